"""CPU per request of the protocol endpoints, measured in this process (no server, no load generator).

A loaded machine makes requests-per-second figures noisy; the CPU time one request costs this
process (``time.process_time`` over N WSGI calls) is not.  Each endpoint is called ``--requests``
times per run, ``--runs`` times; the median µs per request is printed, with min and max.

    .venv/bin/python bench/inprocess.py                          # SQLite + in-process fakeredis
    .venv/bin/python bench/inprocess.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_inprocess \\
        --redis-url redis://127.0.0.1:6379/14                     # wipes both, like bench/run.py
    .venv/bin/python bench/inprocess.py --profile userinfo       # cProfile of one endpoint
    .venv/bin/python bench/inprocess.py --flow --database-url … --redis-url …   # the login flow, step by step

``--flow`` runs whole login flows through the Flask test client (a relying system that is not
first-party, so the consent page is part of it; argon2id with the production parameters) and
prints, per step, the CPU the app spent (µs, median), the SQL round trips (statements, COMMITs,
ROLLBACKs) and the Redis round trips and commands, counted with SQLAlchemy and redis-py hooks.

PostgreSQL's and Redis's own CPU is not counted here (bench/run.py counts it): only the Python
process's, which includes the client side of each round trip.

Environment: ``BENCH_PROFILE_SORT`` (cProfile order, e.g. ``tottime``; default ``cumulative``),
``BENCH_PROFILE_N`` (rows printed, default 40), ``BENCH_WIPE_ANY_DATABASE=1`` (accept a database
whose name lacks "bench", e.g. a helper's own test database: it is wiped all the same).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from idp import create_app  # noqa: E402
from idp.extensions import db, redis_store  # noqa: E402


def build_app(database_url: str, redis_url: str, keys_dir: str, **overrides):
    settings = dict(LOG_LEVEL="WARNING", ARGON2_MEMORY_KIB=1024, ARGON2_TIME_COST=1)
    settings.update(overrides)
    app = create_app("development", DATABASE_URL=database_url, REDIS_URL=redis_url, KEYS_DIR=keys_dir, **settings)
    with app.app_context():
        from flask_migrate import upgrade

        if database_url.startswith("postgresql"):
            if "bench" not in database_url.rsplit("/", 1)[-1] and not os.environ.get("BENCH_WIPE_ANY_DATABASE"):
                raise SystemExit("the database name must contain 'bench' (it is wiped); "
                                 "BENCH_WIPE_ANY_DATABASE=1 wipes a database of another name")
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        if redis_url:
            redis_store.flushdb()
        upgrade(revision="heads")
    return app


def seed(app) -> dict:
    from idp.oauth.access_tokens import issue_access_token
    from idp.oauth.keys import key_store
    from idp.services.accounts.records import NewAccount, create_account
    from idp.services.admin.clients import ClientSpec, create_client

    with app.app_context():
        key_store().ensure()  # an RSA and an EC key
        web, web_secret = create_client(ClientSpec(
            name="压测网站", client_id="bench-web", redirect_uris=["https://rp.example/cb"],
            scope="openid profile phone realname offline_access", first_party=True))
        service, service_secret = create_client(
            ClientSpec(name="压测服务", client_id="bench-service", client_type="service", scope="openid"))
        user = create_account(
            NewAccount(username="bench000", password="Kaoshi#2026ok", name="压测用户", id_type="resident_id",
                       id_number="440303198512124562", phone="13800130001"),
            real_name_verified=True, role=None, actor="bench")
        token = issue_access_token(web, user, "openid profile phone realname", {})
        return dict(service_id=service.client_id, service_secret=service_secret, access_token=token,
                    web_id=web.client_id, web_secret=web_secret, refresh_token=_seed_refresh(web, user))


def _seed_refresh(web, user) -> str:
    """A refresh token of the web client, as a code exchange with offline_access would store it."""
    import secrets
    from datetime import datetime, timedelta, timezone

    from idp.models import Token
    from idp.oauth.grants import sha256

    refresh = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    db.session.add(Token(
        jti=secrets.token_urlsafe(16), client_id=web.client_id, user_id=user.id,
        scope="openid profile offline_access", grant_id=secrets.token_urlsafe(18), sid=None,
        auth_time=int(now.timestamp()), amr=["pwd"], acr=None, refresh_token_hash=sha256(refresh),
        issued_at=now, access_expires_at=now + timedelta(minutes=5), refresh_expires_at=now + timedelta(days=1)))
    db.session.commit()
    return refresh


def service_token(app, seeded: dict) -> str:
    """A client_credentials access token of the service client, issued through the endpoint."""
    client = app.test_client()
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                         auth=(seeded["service_id"], seeded["service_secret"]))
    return answer.get_json()["access_token"]


def requests_of(seeded: dict) -> dict[str, tuple[EnvironBuilder, bytes]]:
    basic = base64.b64encode(f"{seeded['service_id']}:{seeded['service_secret']}".encode()).decode()
    cc = b"grant_type=client_credentials&scope=openid"
    form = "application/x-www-form-urlencoded"
    introspect_user = f"token={seeded['access_token']}&token_type_hint=access_token".encode()
    introspect_service = f"token={seeded['service_token']}&token_type_hint=access_token".encode()
    return {
        "discovery": (EnvironBuilder("/.well-known/openid-configuration"), b""),
        "jwks": (EnvironBuilder("/.well-known/jwks.json"), b""),
        "token (client_credentials)": (EnvironBuilder(
            "/oauth/token", method="POST", data=cc, content_type="application/x-www-form-urlencoded",
            headers={"Authorization": f"Basic {basic}"}), cc),
        "userinfo": (EnvironBuilder(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {seeded['access_token']}"}), b""),
        # a resource server (the service client) asking about a user's token and about its own
        "introspection (user token)": (EnvironBuilder(
            "/oauth/introspect", method="POST", data=introspect_user, content_type=form,
            headers={"Authorization": f"Basic {basic}"}), introspect_user),
        "introspection (cc token)": (EnvironBuilder(
            "/oauth/introspect", method="POST", data=introspect_service, content_type=form,
            headers={"Authorization": f"Basic {basic}"}), introspect_service),
    }


def refresh_caller(app, seeded: dict):
    """Rotated refresh: each call presents the refresh token the previous answer returned."""
    basic = base64.b64encode(f"{seeded['web_id']}:{seeded['web_secret']}".encode()).decode()
    template = EnvironBuilder("/oauth/token", method="POST", content_type="application/x-www-form-urlencoded",
                              headers={"Authorization": f"Basic {basic}"}).get_environ()
    state = {"refresh": seeded["refresh_token"]}
    status_seen: list[str] = []

    def start_response(status, headers, exc_info=None):
        status_seen.append(status)

    def call() -> str:
        body = f"grant_type=refresh_token&refresh_token={state['refresh']}".encode()
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        answer = b"".join(app(environ, start_response))
        status = status_seen.pop()
        if not status.startswith("200"):  # a failed rotation would measure the error path
            raise SystemExit(f"refresh: {status} {answer[:200]!r}")
        state["refresh"] = json.loads(answer)["refresh_token"]
        return status

    return call


def caller(app, builder: EnvironBuilder, body: bytes):
    template = builder.get_environ()
    status_seen: list[str] = []

    def start_response(status, headers, exc_info=None):
        status_seen.append(status)

    def call() -> str:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        for _chunk in app(environ, start_response):
            pass
        return status_seen.pop()

    return call


def measure(call, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


# -- the login flow, step by step -----------------------------------------------------------------------
FLOW_STEPS = (
    "authorize (no session)", "login page", "captcha image", "login POST", "authorize (signed in)",
    "consent POST (code)", "token (code)", "userinfo",
)
CAPTCHA = "BENCH"
FLOW_PASSWORD = "Bench-Login-2024!"
REDIRECT = "https://rp.example/cb"


class Meter:
    """WSGI middleware and hooks: CPU of this thread, SQL and Redis round trips, per request."""

    def __init__(self, app) -> None:
        import redis.connection
        from sqlalchemy import event

        self.app, self.inner = app, app.wsgi_app
        self.step = ""
        # CPU time, not wall time: waiting for PostgreSQL is not this process's cost
        self.profile_step, self.profiler = "", cProfile.Profile(time.thread_time)
        self.trace_step, self.trace = "", []
        self.now = dict(sql=0, commit=0, rollback=0, redis_trips=0, redis_commands=0)
        self.records: list[tuple[str, float, dict]] = []
        with app.app_context():
            engine = db.engine
        def statement(conn, cursor, sql, *rest) -> None:
            self._add("sql")
            self._trace("SQL " + " ".join(sql.split())[:160])

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", lambda *a: self._add("commit"))
        event.listen(engine, "rollback", lambda *a: self._add("rollback"))

        def reset(dbapi_connection, record, *rest) -> None:
            # a connection back in the pool is rolled back; psycopg sends nothing when idle
            info = getattr(dbapi_connection, "info", None)
            if info is not None and getattr(info, "transaction_status", 0) != 0:
                self._add("rollback")

        event.listen(engine, "reset", reset)
        conn_class = redis.connection.AbstractConnection
        send_packed, send, pack_many = conn_class.send_packed_command, conn_class.send_command, conn_class.pack_commands
        meter = self

        def send_packed_command(conn, command, check_health=True):
            meter._add("redis_trips")
            return send_packed(conn, command, check_health)

        def send_command(conn, *args, **kwargs):
            meter._add("redis_commands")
            meter._trace("Redis " + " ".join(str(a)[:40] for a in args[:3]))
            return send(conn, *args, **kwargs)

        def pack_commands(conn, commands):
            commands = list(commands)
            meter._add("redis_commands", len(commands))
            for args in commands:
                meter._trace("Redis (pipelined) " + " ".join(str(a)[:40] for a in args[:3]))
            return pack_many(conn, commands)

        conn_class.send_packed_command, conn_class.send_command = send_packed_command, send_command
        conn_class.pack_commands = pack_commands
        app.wsgi_app = self

    def _add(self, key: str, n: int = 1) -> None:
        self.now[key] += n

    def _trace(self, line: str) -> None:
        if self.trace_step and self.step.startswith(self.trace_step):
            self.trace.append(line)

    def __call__(self, environ, start_response):
        before = dict(self.now)
        profiling = bool(self.profile_step) and self.step.startswith(self.profile_step)
        if profiling:
            self.profiler.enable()
        started = time.thread_time()
        body = b"".join(self.inner(environ, start_response))  # the whole response, inside the window
        cpu = time.thread_time() - started
        if profiling:
            self.profiler.disable()
        self.records.append((self.step, cpu, {k: self.now[k] - before[k] for k in self.now}))
        return [body]


def _field(html: str, name: str) -> str:
    import re
    from html import unescape

    for tag in re.findall(r"<input\b[^>]*>", html):
        if f'name="{name}"' in tag:
            found = re.search(r'value="([^"]*)"', tag)
            return unescape(found.group(1)) if found else ""
    raise SystemExit(f"no {name} field on the page:\n{html[:2000]}")


def one_flow(app, meter: Meter, client_id: str, secret: str, username: str) -> None:
    import hashlib
    import re
    import secrets as _secrets
    from html import unescape
    from urllib.parse import parse_qs, urlencode, urlsplit

    browser = app.test_client()  # a fresh browser: no cookies

    def step(name: str, response, status: int):
        if response.status_code != status:
            raise SystemExit(f"{name}: {response.status_code} (expected {status})\n{response.get_data(as_text=True)[:1500]}")
        return response

    def path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    verifier = _secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
                       "scope": "openid profile", "state": "s" + _secrets.token_urlsafe(8),
                       "nonce": _secrets.token_urlsafe(8), "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    meter.step = FLOW_STEPS[0]
    r = step(meter.step, browser.get("/oauth/authorize?" + query), 302)
    meter.step = FLOW_STEPS[1]
    page = step(meter.step, browser.get(path(r.headers["Location"])), 200).get_data(as_text=True)
    captcha_id, csrf_token = _field(page, "captcha_id"), _field(page, "csrf_token")
    meter.step = FLOW_STEPS[2]
    step(meter.step, browser.get(f"/captcha/{captcha_id}.png"), 200)
    meter.step = FLOW_STEPS[3]
    r = step(meter.step, browser.post("/login", data={
        "csrf_token": csrf_token, "username": username, "password": FLOW_PASSWORD,
        "captcha_id": captcha_id, "captcha": CAPTCHA, "user_type": "personal"}), 302)
    meter.step = FLOW_STEPS[4]
    consent = step(meter.step, browser.get(path(r.headers["Location"])), 200).get_data(as_text=True)
    action = unescape(re.search(r'<form method="post" action="([^"]*)"', consent).group(1))
    meter.step = FLOW_STEPS[5]
    r = step(meter.step, browser.post(action, data={"csrf_token": _field(consent, "csrf_token"),
                                                     "decision": "allow"}), 302)
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    meter.step = FLOW_STEPS[6]
    tokens = step(meter.step, browser.post("/oauth/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier}), 200).get_json()
    meter.step = FLOW_STEPS[7]
    step(meter.step, browser.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}), 200)


def flow_mode(app, flows: int, profile_step: str = "", trace_step: str = "") -> None:
    from idp.oauth.keys import key_store
    from idp.services.accounts.records import NewAccount, create_account
    from idp.services.admin.clients import ClientSpec, create_client
    from idp.services.identity.passwords import hash_password, verify_password

    with app.app_context():
        if not key_store().published():
            key_store().rotate("RS256")
        client, secret = create_client(ClientSpec(
            name="压测第三方", client_id="bench-rp", redirect_uris=[REDIRECT], scope="openid profile"))
        client_id = client.client_id
        # one account per flow: a consent, once given, would skip the consent page next time
        usernames = [f"flow{n:04d}" for n in range(flows + 1)]
        password_hash = hash_password(FLOW_PASSWORD)
        for username in usernames:
            create_account(NewAccount(username=username, password="", name="压测用户", password_hash=password_hash),
                           real_name_verified=False, role=None, actor="bench")
        params = app.config["ARGON2_MEMORY_KIB"], app.config["ARGON2_TIME_COST"], app.config["ARGON2_PARALLELISM"]
        verifies = []
        for _ in range(max(5, flows // 2)):
            started = time.thread_time()
            verify_password(password_hash, FLOW_PASSWORD)
            verifies.append(time.thread_time() - started)
    meter = Meter(app)
    one_flow(app, meter, client_id, secret, usernames[0])  # warm-up: imports, templates, pools
    if trace_step:
        meter.trace_step = trace_step
        one_flow(app, meter, client_id, secret, usernames.pop())
        print(f"round trips of the step {trace_step!r}, one flow:")
        print("\n".join("  " + line for line in meter.trace))
        flows -= 1
    meter.records.clear()
    meter.profile_step = profile_step
    for username in usernames[1:]:
        one_flow(app, meter, client_id, secret, username)
    if profile_step:
        pstats.Stats(meter.profiler).sort_stats("cumulative").print_stats(45)

    by_step: dict[str, list[tuple[float, dict]]] = {name: [] for name in FLOW_STEPS}
    for name, cpu, counts in meter.records:
        by_step[name].append((cpu, counts))
    verify_us = statistics.median(verifies) * 1e6
    print(f"one login flow, step by step: median of {flows} flows (after one warm-up), argon2id "
          f"m={params[0]} KiB t={params[1]} p={params[2]}; CPU of this process only (no WSGI server, "
          f"no PostgreSQL or Redis CPU)")
    head = f"  {'step':26s} {'req':>3s} {'CPU µs':>8s} {'SQL':>4s} {'COMMIT':>6s} {'ROLLBACK':>8s} {'Redis trips':>11s} {'Redis cmds':>10s}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    totals = dict(cpu=0.0, sql=0, commit=0, rollback=0, redis_trips=0, redis_commands=0, requests=0)
    for name in FLOW_STEPS:
        rows = by_step[name]
        requests = len(rows) // flows
        cpu = statistics.median(c for c, _ in rows) * 1e6 * requests
        # the usual count (the per-process client cache reloads a client every few seconds)
        counts = {k: statistics.median_low(c[k] for _, c in rows) for k in rows[0][1]}
        totals["cpu"] += cpu
        totals["requests"] += requests
        for k in counts:
            totals[k] += counts[k]
        print(f"  {name:26s} {requests:3d} {cpu:8.0f} {counts['sql']:4d} {counts['commit']:6d} {counts['rollback']:8d} "
              f"{counts['redis_trips']:11d} {counts['redis_commands']:10d}")
    print("  " + "-" * (len(head) - 2))
    print(f"  {'whole flow':26s} {totals['requests']:3d} {totals['cpu']:8.0f} {totals['sql']:4d} {totals['commit']:6d} "
          f"{totals['rollback']:8d} {totals['redis_trips']:11d} {totals['redis_commands']:10d}")
    print(f"  {'  of which argon2id verify':26s} {'':3s} {verify_us:8.0f}")
    print(f"  {'  everything else':26s} {'':3s} {totals['cpu'] - verify_us:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", action="append", help="endpoint name prefix (repeatable)")
    parser.add_argument("--access-token-alg", default="RS256", choices=["RS256", "ES256"])
    parser.add_argument("--profile", help="cProfile one endpoint (name prefix) and print the top functions; "
                                          "with --flow, one step of the flow (name prefix)")
    parser.add_argument("--flow", action="store_true", help="the login flow step by step instead of the endpoints")
    parser.add_argument("--flows", type=int, default=30, help="login flows measured with --flow")
    parser.add_argument("--trace", help="with --flow: print the SQL statements and Redis commands of one step")
    args = parser.parse_args()

    if args.flow:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
            # the production hashing parameters; the fixed captcha answer and a per-IP limit
            # that one process may exceed, as bench/run.py sets them
            app = build_app(database_url, args.redis_url, str(Path(tmp) / "keys"), ARGON2_MEMORY_KIB=19 * 1024,
                            ARGON2_TIME_COST=2, ARGON2_PARALLELISM=1, CAPTCHA_FIXED=CAPTCHA,
                            LOGIN_IP_LIMIT="1000000 per minute", CAPTCHA_IP_LIMIT="1000000 per minute")
            flow_mode(app, args.flows, args.profile or "", args.trace or "")
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        return

    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = build_app(database_url, args.redis_url, str(Path(tmp) / "keys"), ACCESS_TOKEN_ALG=args.access_token_alg)
        seeded = seed(app)
        seeded["service_token"] = service_token(app, seeded)
        calls = {name: caller(app, b, body) for name, (b, body) in requests_of(seeded).items()}
        calls["token (refresh, rotated)"] = refresh_caller(app, seeded)
        for name, call in calls.items():
            status = call()
            if not status.startswith("200"):
                raise SystemExit(f"{name}: {status}")
        if args.profile:
            name = next(n for n in calls if n.startswith(args.profile))
            profiler = cProfile.Profile()
            profiler.runcall(measure, calls[name], args.requests)
            order = os.environ.get("BENCH_PROFILE_SORT", "cumulative")
            pstats.Stats(profiler).sort_stats(order).print_stats(int(os.environ.get("BENCH_PROFILE_N", "40")))
            return
        print(f"CPU µs per request, median of {args.runs} runs × {args.requests} requests "
              f"({'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'} + "
              f"{'Redis' if args.redis_url else 'fakeredis'}, access tokens {args.access_token_alg})")
        for name, call in calls.items():
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            measure(call, min(50, args.requests))  # warm-up
            runs = [measure(call, args.requests) for _ in range(args.runs)]
            print(f"  {name:28s} {statistics.median(runs):8.0f}   (min {min(runs):.0f}, max {max(runs):.0f})")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
