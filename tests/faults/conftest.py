"""Fault injection: the provider on PostgreSQL and a real Redis, each reached through a TCP proxy
that a test can kill (connections closed, new ones refused) or freeze (connections accepted,
nothing forwarded, no reset — a hung server or a black-holed network path).

PostgreSQL is the shared server of the machine (``IDP_TEST_DATABASE_URL``'s host, else
127.0.0.1:5432) with a database of this suite's own per xdist worker; Redis is a
``redis-server`` this suite starts on a free port.  Without either, the tests that need it skip
and say why (CI has both).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select as sql_select, text
from sqlalchemy.engine import make_url

from idp import create_app
from idp.extensions import db
from idp.models import User
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD
from ..live import free_port

pytestmark = pytest.mark.faults

UNAVAILABLE = "系统繁忙，请稍后再试"


# -- the proxy ---------------------------------------------------------------------------------------
class TcpProxy:
    """127.0.0.1:<port> forwarded to a target port, with a kill switch and a freeze switch."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._frozen = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self.revive()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # switches
    def revive(self) -> None:
        """Listen again (on the same port) and forward."""
        self._frozen.clear()
        self._stopping.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def kill(self) -> None:
        """Close every connection (the peer sees them end) and refuse new ones."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(0.1)  # let the pumps see the end and close their sockets

    def freeze(self) -> None:
        """Keep accepting and keep every connection open, but forward nothing."""
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    # plumbing
    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._sockets.add if add else self._sockets.discard)(sock)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.setblocking(True)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client, True)
        upstream = None
        try:
            while self._frozen.is_set() and not self._stopping.is_set():
                time.sleep(0.05)  # accepted, then silence
            if self._stopping.is_set():
                return
            upstream = socket.create_connection(self.target, timeout=2)
            self._track(upstream, True)
            peers = {client: upstream, upstream: client}
            while not self._stopping.is_set():
                if self._frozen.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._track(sock, False)
                    sock.close()


# -- the servers -------------------------------------------------------------------------------------
def _missing(reason: str):
    """Skip where a server is missing (a laptop); fail in CI, where .ci/run provides them."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _postgres_base():
    url = os.environ.get("IDP_TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    return make_url(url)


def _own_database_name() -> str:
    """One database per xdist worker, named after the suite's own so that two engineers' runs
    (each with its own IDP_TEST_DATABASE_URL) never share one."""
    base = _postgres_base().database or "idp"
    return f"{base}_faults_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated database of this suite's own (direct, not through a proxy)."""
    base = _postgres_base()
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 2})
    name = _own_database_name()
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server: the suite cannot run here
        admin.dispose()
        _missing(f"no PostgreSQL reachable at {base.host}:{base.port or 5432} ({type(exc).__name__})")
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    app = create_app("testing", DATABASE_URL=url, REDIS_URL="", KEYS_DIR="/nonexistent")
    with app.app_context():
        from flask_migrate import upgrade

        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(revision="heads")
        db.engine.dispose()
    yield url


@pytest.fixture(scope="session")
def database(postgres_url):
    """A direct engine for the tests' own checks (row counts), never through the proxy."""
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def start_redis(tmp: Path, *args: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed (apt-get install redis-server redis-sentinel)")
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process, port


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory) -> Iterator[int]:
    process, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    stop(process)


# -- the provider behind the proxies ---------------------------------------------------------------
@pytest.fixture
def pg_proxy(postgres_url) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.port or 5432, url.host or "127.0.0.1")
    yield proxy
    proxy.kill()


@pytest.fixture
def redis_proxy(redis_port) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_port)
    yield proxy
    proxy.kill()


FAULT_SETTINGS = dict(
    PROPAGATE_EXCEPTIONS=False,  # as in production: every error goes through the handlers
    DATABASE_STATEMENT_TIMEOUT=1.0,
    DATABASE_CONNECT_TIMEOUT=2,
    DATABASE_POOL_TIMEOUT=1.0,
    REDIS_SOCKET_TIMEOUT=1.0,
    REDIS_CONNECT_TIMEOUT=1.0,
)


@pytest.fixture
def make_fault_app(keys_dir, postgres_url, database, redis_port):
    """The provider with its database and Redis reached through the given proxies."""
    import redis

    apps = []

    def make(pg: TcpProxy, rd: TcpProxy, **overrides):
        url = make_url(postgres_url).set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False)
        settings = dict(FAULT_SETTINGS, DATABASE_URL=url, REDIS_URL=f"redis://{rd.address}/0", KEYS_DIR=str(keys_dir))
        settings.update(overrides)
        app = create_app("testing", **settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    with database.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis.Redis(port=redis_port).flushall()


@pytest.fixture
def fault_app(make_fault_app, pg_proxy, redis_proxy):
    return make_fault_app(pg_proxy, redis_proxy)


def add_citizen(app, username: str = "zhangsan", **fields) -> User:
    data = dict(username=username, password=DEFAULT_PASSWORD, name="张三", id_type="resident_id",
                id_number="440303198512124562", phone="13800130001", gender="M",
                birthdate=date(1985, 12, 12), bank_code="ICBC", card_number="6222020200112233445")
    data.update(fields)
    with app.app_context():
        user = create_account(NewAccount(**data), real_name_verified=True)
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def count_users(database) -> int:
    with database.connect() as conn:
        return conn.scalar(sql_select(func.count()).select_from(User.__table__))


class Timer:
    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.started


def assert_unavailable_page(response) -> None:
    assert response.status_code == 503, (response.status_code, response.data[:300])
    assert response.mimetype == "text/html"
    assert UNAVAILABLE in response.data.decode()


def assert_unavailable_json(response) -> None:
    assert response.status_code == 503, (response.status_code, response.data[:300])
    assert response.get_json()["error"] == "temporarily_unavailable"
