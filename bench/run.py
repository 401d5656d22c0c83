"""The benchmark: our provider under its production WSGI server beside node oidc-provider, on the same machine.

    .venv/bin/python bench/run.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        --redis-url redis://127.0.0.1:6379/13

Starts both providers pinned to the server CPU(s) (``taskset``), pins itself — the load generator
— to the other CPU(s), seeds accounts and clients, and measures each operation at each
concurrency for a bounded window; prints one side-by-side table and writes it as JSON (and
Markdown) under bench/results/.  See the "Benchmarks" section of the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import OPERATIONS, Target, run_operation  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / "peers"
RESULTS = BENCH / "results"
REDIRECT_URI = "http://127.0.0.1:9/bench/callback"  # never contacted: the flow stops at the redirect
PASSWORD = "Bench-Login-2024!"
CAPTCHA = "BENCH"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_DURATION = 30.0

# the targets, as ratios to the peer measured in the same run, per CPU-second of the server *and* of
# PostgreSQL and Redis (the peer keeps its state in its own memory: our stores' CPU is our cost)
TARGETS = {
    "protocol_vs_peer": 0.5,  # discovery+JWKS, client_credentials, rotated refresh, userinfo
    "flow_vs_peer": 0.9,  # the full login flow with argon2id
    "p99_vs_peer_at_32": 2.0,  # p99 at c=32 at most this multiple of the peer's, every row
}
PROTOCOL_OPS = ("discovery", "client_credentials", "refresh", "userinfo")
# OWASP's argon2id parameters: the bench seeds and runs with exactly these, the peer too
ARGON2 = {"memory_kib": 19 * 1024, "time_cost": 2, "parallelism": 1}


# -- processes: CPU time and memory from /proc ----------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime ticks) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(root: int) -> list[int]:
    parents = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st:
            parents[pid] = st[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(frontier)
    return tree


def cpu_ticks(pids: list[int]) -> int:
    return sum((_stat(pid) or (0, 0))[1] for pid in pids)


def machine_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (every CPU), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def own_ticks() -> int:
    t = os.times()
    return round((t.user + t.system) * CLK_TCK)


def store_pids(database_url: str) -> list[int]:
    """The PostgreSQL and Redis processes that work for one server: the backends of its database and
    the shared processes (postmaster, WAL writer, checkpointer, …, redis-server).  Other databases'
    backends are left out; the shared processes serve everyone on the machine, so on a busy
    machine the figure over-counts our stores' CPU, never under-counts it."""
    redis = [pid for pid in _all_pids() if _comm(pid) == "redis-server"]
    if not database_url.startswith("postgresql"):
        return redis
    import psycopg

    parts = urlsplit(database_url.replace("postgresql+psycopg://", "postgresql://"))
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type <> 'client backend'",
                            (parts.path.lstrip("/"),)).fetchall()
    pids = {pid for (pid,) in rows}
    postmaster = {st[0] for pid in pids if (st := _stat(pid)) and _comm(st[0]) == "postgres"}
    return [*pids, *postmaster, *redis]


class MemorySampler(threading.Thread):
    """Peak resident memory of a process tree, sampled every 200 ms."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak_kib, self._done = pids, 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in self.pids))
            self._done.wait(0.2)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_kib


# -- the two servers ------------------------------------------------------------------------------------
def cpu_list(spec: str) -> list[int]:
    """The CPUs of a taskset list such as "0", "0,2" or "0-3"."""
    cpus: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer on port {port} within {seconds} s; see {log}")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    target: Target
    description: str
    pids: list[int] = field(default_factory=list)
    database_url: str = ""
    seed: dict = field(default_factory=dict)

    def stop(self) -> None:
        # the whole process group (each server starts its own session): a worker must not
        # outlive its main process
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def reset_database(url: str) -> None:
    """Drop and recreate the bench database (its name must contain "bench": it is wiped)."""
    import psycopg

    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"--database-url names database {name!r}: the bench wipes it, so its name must contain 'bench'")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_command(args, workers: int, port: int) -> list[str]:
    """The WSGI server serving ``wsgi:app``: the production command of the README, on a bench port."""
    bin_dir = Path(sys.executable).parent
    if args.server == "granian":
        # blocking threads run the WSGI app (the GIL lets one run Python at a time; the others
        # wait on PostgreSQL and Redis); one runtime thread does the HTTP I/O in Rust
        return [str(bin_dir / "granian"), "--interface", "wsgi", "wsgi:app", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--blocking-threads", str(args.threads),
                "--runtime-threads", "1", "--http", "1", "--backlog", "2048", "--log-level", "warning", "--no-ws"]
    return [str(bin_dir / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}",
            "--worker-class", args.worker_class, "--workers", str(workers), "--threads", str(args.threads),
            "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning"]


def server_description(args, workers: int) -> str:
    if args.server == "granian":
        return f"granian wsgi {workers} worker(s) x {args.threads} blocking threads"
    return f"gunicorn {args.worker_class} {workers} worker(s) x {args.threads} threads"


def start_ours(args, workdir: Path, log_dir: Path, *, name: str = "ours", source: Path = REPO,
               database_url: str | None = None, redis_url: str | None = None) -> Server:
    """Seed and start our provider from ``source`` (this checkout, or another one to compare)."""
    database_url = args.database_url if database_url is None else database_url
    redis_url = args.redis_url if redis_url is None else redis_url
    workdir = workdir / name
    workdir.mkdir()
    port = free_port()
    env = {
        "PYTHONPATH": str(source),  # ahead of the editable install: `source`'s idp package is used
        **os.environ,
        # development settings: the fixed captcha answer (IDP_CAPTCHA_FIXED) is the documented
        # test/demo switch that production refuses; everything else is as in production
        "IDP_ENV": "development",
        "IDP_CAPTCHA_FIXED": CAPTCHA,
        "IDP_ISSUER": f"http://127.0.0.1:{port}",
        "IDP_SECRET_KEY": secrets.token_urlsafe(48),
        "IDP_KEYS_DIR": str(workdir / "keys"),
        "IDP_DATABASE_URL": database_url or f"sqlite:///{workdir / 'idp.sqlite'}",
        "IDP_REDIS_URL": redis_url or "",
        # every bench request comes from 127.0.0.1: the per-IP login limit stays on (its Redis
        # work is measured) but high enough not to refuse the bench
        "IDP_LOGIN_IP_LIMIT": "1000000 per minute",
        "IDP_LOG_LEVEL": args.log_level,
        # the production hashing parameters, whatever the caller's environment says
        "IDP_ARGON2_MEMORY_KIB": str(ARGON2["memory_kib"]),
        "IDP_ARGON2_TIME_COST": str(ARGON2["time_cost"]),
        "IDP_ARGON2_PARALLELISM": str(ARGON2["parallelism"]),
    }
    if database_url and database_url.startswith("postgresql"):
        reset_database(database_url)
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    seeded = subprocess.run(
        [sys.executable, str(BENCH / "seed.py"), "--users", str(args.users), "--password", PASSWORD,
         "--redirect-uri", REDIRECT_URI],
        env=env, cwd=source, capture_output=True, text=True,
    )
    if seeded.returncode != 0:
        raise SystemExit(f"seeding failed:\n{seeded.stderr[-3000:]}")
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    argon2 = seed["argon2"]
    configured = {k: argon2[k] for k in ARGON2}
    if configured != ARGON2 or argon2.get("stored", configured) != ARGON2 or argon2.get("type", "argon2id") != "argon2id":
        raise SystemExit(f"the seeded accounts are not hashed with argon2id {ARGON2}: {argon2}")

    workers = (args.workers or len(cpu_list(args.server_cpus))) if redis_url else 1
    # (the in-process Redis stand-in serves one process only)
    command = ["taskset", "-c", args.server_cpus, *server_command(args, workers, port)]
    log = log_dir / f"{name}-server.log"
    proc = subprocess.Popen(command, env=env, cwd=source, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_for(port, proc, log)
    target = Target(
        name=name, host="127.0.0.1", port=port,
        web_client=(seed["web"]["client_id"], seed["web"]["client_secret"]),
        service_client=(seed["service"]["client_id"], seed["service"]["client_secret"]),
        redirect_uri=REDIRECT_URI, usernames=seed["users"], password=PASSWORD, captcha=CAPTCHA,
    )
    storage = ("PostgreSQL" if "postgresql" in env["IDP_DATABASE_URL"] else "SQLite") + " + " + (
        "Redis" if redis_url else "in-process Redis stand-in")
    origin = "" if source == REPO else f", code from {source}"
    server = Server(name, proc, port, target, f"{server_description(args, workers)}, {storage}{origin}")
    server.seed = seed
    server.database_url = env["IDP_DATABASE_URL"]
    return server


def start_peer(args, seed: dict, workdir: Path, log_dir: Path) -> Server:
    if not (PEERS / "node_modules" / "oidc-provider").exists():
        print("installing the peer (npm ci in bench/peers) ...", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS, check=True,
                       stdout=subprocess.DEVNULL)
    port = free_port()
    web_secret, service_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    config = {
        "port": port,
        "issuer": f"http://127.0.0.1:{port}",
        "argon2": {k: seed["argon2"][k] for k in ARGON2},
        "clients": [
            {"client_id": "bench-web", "client_secret": web_secret, "redirect_uris": [REDIRECT_URI],
             "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
             "token_endpoint_auth_method": "client_secret_basic", "scope": "openid profile offline_access"},
            {"client_id": "bench-service", "client_secret": service_secret, "redirect_uris": [],
             "grant_types": ["client_credentials"], "response_types": [],
             "token_endpoint_auth_method": "client_secret_basic"},
        ],
        "users": [{"username": u, "password": PASSWORD, "sub": f"sub-{u}", "name": u} for u in seed["users"]],
    }
    config_path = workdir / "peer.json"
    config_path.write_text(json.dumps(config))
    log = log_dir / "peer-server.log"
    proc = subprocess.Popen(["taskset", "-c", args.server_cpus, "node", str(PEERS / "oidc-provider-peer.mjs"),
                             str(config_path)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=PEERS, start_new_session=True)
    wait_for(port, proc, log)
    version = json.loads((PEERS / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
    target = Target(
        name="peer", host="127.0.0.1", port=port, web_client=("bench-web", web_secret),
        service_client=("bench-service", service_secret), redirect_uri=REDIRECT_URI,
        usernames=seed["users"], password=PASSWORD, extra_authorize={"prompt": "consent"},
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return Server("peer", proc, port, target, f"node {node} oidc-provider {version}, one process, state in memory")


# -- measuring ------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(server: Server, op_name: str, concurrency: int, args) -> dict:
    op = OPERATIONS[op_name](server.target)
    server.pids = process_tree(server.proc.pid)
    stores: list[int] = []
    marks: dict = {}

    def start() -> None:
        # taken at the window's start: database connections opened during warm-up count
        stores[:] = store_pids(server.database_url) if server.name != "peer" else []
        marks["sampler"] = MemorySampler(server.pids)
        marks["sampler"].start()
        marks["cpu0"], marks["store0"], marks["t0"] = cpu_ticks(server.pids), cpu_ticks(stores), time.perf_counter()
        marks["busy0"], marks["own0"] = machine_busy_ticks(), own_ticks()

    def end() -> None:
        marks["cpu1"], marks["store1"], marks["t1"] = cpu_ticks(server.pids), cpu_ticks(stores), time.perf_counter()
        marks["busy1"], marks["own1"] = machine_busy_ticks(), own_ticks()
        marks["peak_kib"] = marks["sampler"].stop()

    profiler = None
    if args.profile and server.name != "peer":
        # py-spy samples every worker (--subprocesses) while it holds the GIL (--gil: CPU, not
        # waiting) for the measured window, without
        # slowing the workers (--nonblocking); collapsed stacks go next to the logs
        out = args.log_dir / f"profile-{server.name}-{op_name}-c{concurrency}.txt"
        profiler = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.proc.pid), "--subprocesses", "--gil",
             "--nonblocking", "--rate", "250", "--format", "raw", "--output", str(out),
             "--duration", str(int(args.warmup + args.duration))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tally, elapsed = asyncio.run(run_operation(op, concurrency, args.warmup, args.duration, start, end))
    if profiler is not None:
        profiler.wait()
    wall = marks["t1"] - marks["t0"]
    cores = (marks["cpu1"] - marks["cpu0"]) / CLK_TCK / wall
    store_cores = max((marks["store1"] - marks["store0"]) / CLK_TCK / wall, 0.0)  # a backend may exit
    # everything else on the machine: other people's work competes for the same CPUs (and
    # their caches), so a run with a high figure here is not a clean measurement
    other_cores = ((marks["busy1"] - marks["busy0"]) - (marks["own1"] - marks["own0"])) / CLK_TCK / wall \
        - cores - store_cores
    units = len(tally.latencies)
    rate = units / elapsed
    row = {
        "op": op_name,
        "operation": op.name,
        "impl": server.name,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "units": units,
        "requests": tally.requests,
        "rate": round(rate, 1),
        "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(tally.latencies) * 1000, 2) if units else None,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "server_cores": round(cores, 3),
        "store_cores": round(store_cores, 3),
        "load_cores": round((marks["own1"] - marks["own0"]) / CLK_TCK / wall, 3),
        "other_cores": round(max(other_cores, 0.0), 3),
        "peak_mib": round(marks["peak_kib"] / 1024, 1),
        "rate_per_core": round(rate / cores, 1) if cores > 0.01 else None,
        # what the targets compare: units per CPU-second of the server and of PostgreSQL + Redis
        "rate_per_cpu_s": round(rate / (cores + store_cores), 1) if cores > 0.01 else None,
    }
    if tally.token_latencies:
        row["token_step_p99_ms"] = round(percentile(tally.token_latencies, 0.99) * 1000, 2)
    return row


# -- reporting ---------------------------------------------------------------------------------------------
COLUMNS = [
    ("operation", "operation", "{}"), ("c", "concurrency", "{}"), ("impl", "impl", "{}"),
    ("/s", "rate", "{:.0f}"), ("p50 ms", "p50_ms", "{:.1f}"), ("p99 ms", "p99_ms", "{:.1f}"),
    ("errors", "errors", "{}"), ("cores", "server_cores", "{:.2f}"), ("store cores", "store_cores", "{:.2f}"),
    ("other", "other_cores", "{:.2f}"), ("peak MiB", "peak_mib", "{:.0f}"),
    ("/s per CPU-s", "rate_per_cpu_s", "{:.0f}"), ("spread", "spread", "{}"), ("ours/peer", "ratio", "{}"),
    ("p99/peer", "p99_ratio", "{}"), ("vs before", "gain", "{}"),
]


def combine(runs: list[dict]) -> dict:
    """One row from repeated runs of the same (operation, concurrency, server): the median run by
    rate per CPU-second, with the spread of that figure over the runs (max - min) / median."""
    ordered = sorted(runs, key=lambda r: r["rate_per_cpu_s"] or 0)
    row = dict(ordered[len(ordered) // 2])
    row["errors"] = sum(r["errors"] for r in runs)
    row["error_samples"] = [e for r in runs for e in r["error_samples"]][:3]
    row["other_cores"] = max(r["other_cores"] for r in runs)
    row["repeats"] = len(runs)
    figures = [r["rate_per_cpu_s"] or 0 for r in runs]
    middle = statistics.median(figures)
    row["spread"] = f"{100 * (max(figures) - min(figures)) / middle:.0f}%" if len(runs) > 1 and middle else ""
    return row


def with_ratios(rows: list[dict]) -> list[dict]:
    """ours/peer per CPU-second (server + stores), p99 ours/peer, and ours/before per CPU-second."""
    peer = {(r["op"], r["concurrency"]): r for r in rows if r["impl"] == "peer"}
    before = {(r["op"], r["concurrency"]): r for r in rows if r["impl"] == "before"}
    for r in rows:
        key = (r["op"], r["concurrency"])
        r["ratio"] = r["p99_ratio"] = r["gain"] = ""
        r["ratio_value"] = r["p99_ratio_value"] = None
        if r["impl"] != "ours":
            continue
        if key in peer and peer[key]["rate_per_cpu_s"] and r["rate_per_cpu_s"]:
            r["ratio_value"] = round(r["rate_per_cpu_s"] / peer[key]["rate_per_cpu_s"], 3)
            r["ratio"] = f"{r['ratio_value']:.2f}x"
        if key in peer and peer[key]["p99_ms"]:
            r["p99_ratio_value"] = round(r["p99_ms"] / peer[key]["p99_ms"], 2)
            r["p99_ratio"] = f"{r['p99_ratio_value']:.2f}x"
        if key in before and before[key]["rate_per_cpu_s"] and r["rate_per_cpu_s"]:
            r["gain"] = f"{r['rate_per_cpu_s'] / before[key]['rate_per_cpu_s']:.2f}x"
    return rows


def format_table(rows: list[dict], markdown: bool = False) -> str:
    cells = [[fmt.format(r[key]) if r.get(key) is not None else "-" for _, key, fmt in COLUMNS] for r in rows]
    heads = [h for h, _, _ in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(heads, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for c in cells:
        out.append("  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths))))
    return "\n".join(out)


def check_targets(rows: list[dict]) -> list[dict]:
    """Each target, for each operation and concurrency our provider ran: met or not, with the figure.
    A row without its peer row (``--only ours``) cannot meet a target stated against the peer."""
    checks: list[dict] = []

    def check(what: str, value, goal: str, ok: bool) -> None:
        checks.append({"target": what, "value": value, "goal": goal, "met": bool(ok)})

    peer = {(r["op"], r["concurrency"]) for r in rows if r["impl"] == "peer"}
    peer_units = {(r["op"], r["concurrency"]): r["units"] for r in rows if r["impl"] == "peer"}
    for r in sorted((r for r in rows if r["impl"] == "ours"), key=lambda r: (r["op"], r["concurrency"])):
        op, c, name = r["op"], r["concurrency"], r["operation"]
        check(f"{name} c={c}: no errors", r["errors"], "0", r["errors"] == 0)
        if not r["units"] or not peer_units.get((op, c), 1):
            # nothing finished inside the window: no figure to compare (a longer --duration)
            check(f"{name} c={c}: units completed in the window (ours, peer)",
                  f"{r['units']}, {peer_units.get((op, c), '-')}", "> 0 each", False)
        has_peer = (op, c) in peer
        goal = TARGETS["flow_vs_peer"] if op == "flow" else TARGETS["protocol_vs_peer"] if op in PROTOCOL_OPS else None
        if goal is not None:
            ratio = r["ratio_value"]
            check(f"{name} c={c}: ours/peer per CPU-second incl. PostgreSQL + Redis",
                  ratio if has_peer else "no peer row", f">= {goal}x", has_peer and ratio is not None and ratio >= goal)
        if c == 32:
            ratio = r["p99_ratio_value"]
            check(f"{name} c=32: p99 ours/peer", f"{ratio} ({r['p99_ms']} ms)" if has_peer else "no peer row",
                  f"<= {TARGETS['p99_vs_peer_at_32']}x", has_peer and ratio is not None and ratio <= TARGETS["p99_vs_peer_at_32"])
    return checks


def noise_summary(rows: list[dict]) -> str:
    """How clean the run was: CPU used by unrelated processes during the windows, and the spread
    of repeated runs."""
    other = [r["other_cores"] for r in rows] or [0.0]
    text = (f"noise: unrelated processes used {statistics.fmean(other):.2f} cores on average during the "
            f"measured windows (max {max(other):.2f}) of this machine's {os.cpu_count()}")
    spreads = [float(r["spread"].rstrip("%")) for r in rows if r.get("spread")]
    if spreads:
        text += (f"; repeated runs differed by {statistics.median(spreads):.0f}% (median) and up to "
                 f"{max(spreads):.0f}% in rate per CPU-second")
    return text


def _sibling_database(url: str) -> str:
    if not url or not url.startswith("postgresql"):
        return ""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path + "_before"))


def _sibling_redis(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    number = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{number + 1}"))


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "idp"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL of a database to WIPE and use (its name must contain 'bench'); "
                             "default: SQLite in a temporary directory")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""),
                        help="Redis URL of a database number to FLUSH and use; default: the in-process stand-in")
    parser.add_argument("--ops", default="discovery,client_credentials,refresh,userinfo,flow",
                        help=f"comma-separated, from {', '.join(OPERATIONS)}")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--duration", type=float, default=10.0, help=f"measured seconds per run (at most {MAX_DURATION:.0f})")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--only", choices=("ours", "peer", "both"), default="both")
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian",
                        help="the WSGI server of our provider: granian (the production command) or gunicorn")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes (with a Redis URL); default one per server CPU: more processes than "
                             "cores measured slower per core (cache and scheduler churn), threads cover I/O waits")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker running the app (granian: blocking threads; gunicorn: gthread threads)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (with --server gunicorn)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each row this many times (servers taking turns) and report the median run "
                             "and the spread, a noise figure")
    parser.add_argument("--server-cpus", default="0", help="CPU list for the servers (taskset -c)")
    parser.add_argument("--load-cpus", default="1", help="CPU list for this load generator")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--log-level", default="WARNING", help="our provider's IDP_LOG_LEVEL")
    parser.add_argument("--label", default="", help="a word to tell this run apart in the JSON")
    parser.add_argument("--profile", action="store_true",
                        help="sample our workers with py-spy during each run (bench/results/logs-*/profile-*.txt; "
                             "summarise with bench/profile_summary.py)")
    parser.add_argument("--compare-source", type=Path,
                        help="also run our provider from this other checkout (e.g. `git archive <commit> | tar -x "
                             "-C DIR`) as 'before', on database <name>_before and the next Redis database number")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args()
    args.duration = min(args.duration, MAX_DURATION)

    if os.cpu_count() and os.cpu_count() >= 2:
        load_cpus = set(cpu_list(args.load_cpus))
        os.sched_setaffinity(0, load_cpus)  # what `taskset -c <load-cpus>` does, for this process
        pinning = (f"servers pinned to CPU {args.server_cpus} (taskset -c {args.server_cpus}); "
                   f"load generator pinned to CPU {args.load_cpus}")
    else:
        pinning = "one CPU only: servers and load generator share it (figures are pessimistic)"
        args.server_cpus = "0"

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"logs-{stamp}"
    log_dir.mkdir()
    args.log_dir = log_dir
    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    servers: list[Server] = []
    rows: list[dict] = []
    ours: Server | None = None
    try:
        print(f"== {pinning}", flush=True)
        ours = start_ours(args, workdir, log_dir)
        if args.only in ("ours", "both"):
            servers.append(ours)
        if args.compare_source:
            servers.append(start_ours(
                args, workdir, log_dir, name="before", source=args.compare_source.resolve(),
                database_url=_sibling_database(args.database_url), redis_url=_sibling_redis(args.redis_url),
            ))
        if args.only in ("peer", "both"):
            servers.append(start_peer(args, ours.seed, workdir, log_dir))
        if args.only == "peer":
            ours.stop()
        for server in servers:
            asyncio.run(server.target.discover())
            print(f"== {server.name}: {server.description} on port {server.port}", flush=True)
        print(f"== argon2id m={ours.seed['argon2']['memory_kib']} KiB t={ours.seed['argon2']['time_cost']} "
              f"p={ours.seed['argon2']['parallelism']}; {args.warmup:.0f} s warm-up + {args.duration:.0f} s "
              f"measured per run", flush=True)
        for op_name in args.ops.split(","):
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                runs: dict[str, list[dict]] = {server.name: [] for server in servers}
                for _ in range(max(args.repeat, 1)):
                    for server in servers:
                        row = measure(server, op_name, concurrency, args)
                        runs[server.name].append(row)
                        print(
                            f"   {row['operation']:<28} c={concurrency:<3} {server.name:<6} {row['rate']:>8.1f}/s "
                            f"p50 {row['p50_ms']:>7.1f} ms  p99 {row['p99_ms']:>7.1f} ms  errors {row['errors']}  "
                            f"cores {row['server_cores']:.2f} (+{row['store_cores']:.2f} stores, load gen "
                            f"{row['load_cores']:.2f}, other processes {row['other_cores']:.2f})", flush=True)
                        for sample in row["error_samples"]:
                            print(f"      error: {sample}", flush=True)
                rows.extend(combine(server_runs) for server_runs in runs.values())
    finally:
        for server in [*servers, *([ours] if ours else [])]:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = with_ratios(rows)
    checks = check_targets(rows)
    commit = git_commit()
    header = (f"commit {commit}, {stamp}; {pinning}\n"
              + "\n".join(f"{s.name}: {s.description}" for s in servers)
              + f"\nargon2id m={ARGON2['memory_kib']} KiB t={ARGON2['time_cost']} p={ARGON2['parallelism']} (both)"
              + "\n'cores' = CPU time of the server's processes / wall time; 'store cores' = PostgreSQL + Redis "
                "(not pinned); 'other' = CPU used meanwhile by unrelated processes on this machine (noise); "
                "'/s per CPU-s' = rate / (cores + store cores); 'spread' = (max - min) / median of that over "
                "--repeat runs; 'ours/peer' compares /s per CPU-s; a flow = 7 requests incl. argon2id verify"
              + "\n" + noise_summary(rows))
    print()
    print(header)
    print(format_table(rows))
    print()
    for c in checks:
        print(f"  [{'met' if c['met'] else 'NOT met'}] {c['target']}: {c['value']} (target {c['goal']})")
    missed = [c for c in checks if not c["met"]]
    print(f"\n{len(checks) - len(missed)} of {len(checks)} targets met" + (": ALL MET" if checks and not missed else ""))
    result = {"commit": commit, "time": stamp, "label": args.label, "pinning": pinning,
              "servers": {s.name: s.description for s in servers}, "duration": args.duration,
              "repeat": args.repeat, "noise": noise_summary(rows), "targets_set": TARGETS, "argon2": ARGON2,
              "rows": rows, "targets": checks}
    out = RESULTS / f"bench-{stamp}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    markdown = "```\n" + header + "\n```\n\n" + format_table(rows, markdown=True) + "\n\n" + "\n".join(
        f"- {'met' if c['met'] else '**NOT met**'}: {c['target']}: {c['value']} (target {c['goal']})" for c in checks)
    (args.markdown or RESULTS / "latest.md").write_text(markdown + "\n")
    print(f"\nwritten: {out.relative_to(REPO)} (and bench/results/latest.json, {(args.markdown or RESULTS / 'latest.md')})")


if __name__ == "__main__":
    main()
