"""Redis Sentinel fail-over under load: a real primary, a replica and a sentinel; logins and
token requests run against a live server while the primary is killed; they continue on the
promoted replica, with errors (503, never 500) only while the sentinel switches."""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests

from idp import create_app
from idp.extensions import db

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields
from ..live import free_port, serve
from .conftest import add_citizen, start_redis, stop, wait_for_port

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SERVICE = "idp-primary"
REDIRECT_URI = "https://rp.example.test/cb"
PAUSE_AFTER_ERROR = 0.2


@pytest.fixture
def sentinel_cluster(tmp_path):
    """Primary, replica, sentinel (quorum 1, down after 1 s); yields (sentinel port, primary process)."""
    primary, primary_port = start_redis(tmp_path)
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    replica, replica_port = start_redis(replica_dir, "--replicaof", "127.0.0.1", str(primary_port))
    processes = [primary, replica]
    try:
        _until(lambda: redis.Redis(port=replica_port).info("replication").get("master_link_status") == "up",
               "the replica never synchronised")
        sentinel_port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndaemonize no\ndir {tmp_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        sentinel = subprocess.Popen([shutil.which("redis-server"), str(conf), "--sentinel"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(sentinel)
        wait_for_port(sentinel_port, sentinel)
        watcher = redis.Redis(port=sentinel_port, decode_responses=True)
        _until(lambda: watcher.execute_command("SENTINEL", "REPLICAS", SERVICE), "the sentinel never saw the replica")
        yield sentinel_port, primary, watcher
    finally:
        for process in reversed(processes):
            stop(process)


def _until(condition, message: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def _primary_port(watcher) -> int:
    return int(watcher.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)[1])


def _login_and_token(url: str, client_id: str, secret: str) -> tuple[str, int]:
    """One citizen's visit: login page, login, authorize (PKCE), code for tokens."""
    web = requests.Session()
    page = web.get(f"{url}/login", timeout=10)
    if page.status_code != 200:
        return "login page", page.status_code
    fields = form_fields(page.text)
    fields.update(username="zhangsan", password=DEFAULT_PASSWORD, captcha=CAPTCHA)
    signed_in = web.post(f"{url}/login", data=fields, allow_redirects=False, timeout=10)
    if signed_in.status_code != 302:
        return "login", signed_in.status_code
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorized = web.get(f"{url}/oauth/authorize", allow_redirects=False, timeout=10, params=dict(
        response_type="code", client_id=client_id, redirect_uri=REDIRECT_URI, scope="openid profile",
        state="s", nonce=secrets.token_hex(8), code_challenge=challenge, code_challenge_method="S256"))
    if authorized.status_code != 302 or not authorized.headers["Location"].startswith(REDIRECT_URI):
        return "authorize", authorized.status_code
    code = parse_qs(urlsplit(authorized.headers["Location"]).query)["code"][0]
    token = requests.post(f"{url}/oauth/token", auth=(client_id, secret), timeout=10, data=dict(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier))
    if token.status_code != 200 or "id_token" not in token.json():
        return "token", token.status_code
    return "ok", 200


def test_logins_and_tokens_continue_after_a_sentinel_failover(sentinel_cluster, keys_dir, tmp_path):
    sentinel_port, primary, watcher = sentinel_cluster
    first_primary = _primary_port(watcher)
    port = free_port()
    app = create_app(
        "testing", DATABASE_URL=f"sqlite:///{tmp_path / 'sentinel.sqlite'}", KEYS_DIR=str(keys_dir),
        REDIS_URL=f"redis+sentinel://127.0.0.1:{sentinel_port}/{SERVICE}/0", ISSUER=f"http://127.0.0.1:{port}",
        PROPAGATE_EXCEPTIONS=False, LOGIN_IP_LIMIT="100000 per minute", CAPTCHA_IP_LIMIT="100000 per minute",
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
        from idp.services.admin.clients import ClientSpec, create_client

        client, secret = create_client(ClientSpec(name="考生服务系统", redirect_uris=[REDIRECT_URI],
                                                  scope="openid profile", first_party=True))
        client_id = client.client_id
    add_citizen(app)

    results: list[tuple[float, str, int]] = []
    stop_load = threading.Event()
    try:
        with serve(app, port) as url:
            def load():
                while not stop_load.is_set():
                    step, status = _login_and_token(url, client_id, secret)
                    results.append((time.monotonic(), step, status))
                    if step != "ok":
                        time.sleep(PAUSE_AFTER_ERROR)  # as a citizen would, not a tight loop

            workers = [threading.Thread(target=load) for _ in range(3)]
            for worker in workers:
                worker.start()
            time.sleep(2.0)
            killed_at = time.monotonic()
            primary.kill()
            _until(lambda: _primary_port(watcher) != first_primary, "the sentinel never promoted the replica",
                   timeout=20)
            switched_at = time.monotonic()
            time.sleep(4.0)
            stop_load.set()
            for worker in workers:
                worker.join(timeout=30)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    before = [r for r in results if r[0] < killed_at]
    after = [r for r in results if r[0] > switched_at + 1.0]
    errors = [r for r in results if r[1] != "ok"]
    print(f"\nSentinel fail-over: switch took {switched_at - killed_at:.1f}s; {len(before)} visits before, "
          f"{len(after)} after; {len(errors)} failed steps, all between the kill and the switch: "
          f"{sorted({(step, status) for _, step, status in errors})}")
    assert before and all(step == "ok" for _, step, _ in before)
    assert len(after) >= 5 and all(step == "ok" for _, step, _ in after), after
    assert all(killed_at <= t <= switched_at + 1.0 for t, _, _ in errors)
    assert all(status == 503 for _, _, status in errors)  # the platform's answer, never a 500
    # bounded by the switch: each of the 3 visitors fails at most once per pause while it lasts
    assert len(errors) <= 3 * ((switched_at - killed_at + 1.0) / PAUSE_AFTER_ERROR + 2)


def test_the_sentinel_address_form():
    from idp.extensions import SentinelAddress

    address = SentinelAddress.parse("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/idp-primary/3")
    assert address.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (address.service, address.db, address.password) == ("idp-primary", 3, "s@cret")
    assert address.limiter_uri() == "redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/idp-primary"
    assert SentinelAddress.parse("redis+sentinel://h:26379/svc").db == 0
    for bad in ("redis+sentinel://h:26379/", "redis+sentinel://h/svc", "redis+sentinel://h:1/svc/x"):
        with pytest.raises(ValueError, match="Sentinel|host:port"):
            SentinelAddress.parse(bad)
