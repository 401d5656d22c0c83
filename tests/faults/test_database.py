"""PostgreSQL killed, frozen or bounced, and a multi-host URL with one host down."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy.engine import make_url

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from ..live import free_port, serve
from .conftest import Timer, add_citizen, assert_unavailable_page, count_users

pytestmark = pytest.mark.faults


def _signed_in(app):
    add_citizen(app)
    browser = app.test_client()
    assert login(browser, "zhangsan", DEFAULT_PASSWORD).status_code == 302
    assert browser.get("/account/").status_code == 200
    return browser


def test_database_killed_answers_503_fast_and_liveness_stays(fault_app, pg_proxy):
    browser = _signed_in(fault_app)
    pg_proxy.kill()
    with Timer() as page:
        response = browser.get("/account/")
    assert_unavailable_page(response)
    with Timer() as api:
        response = fault_app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                                headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 503 and response.get_json()["error"] == "temporarily_unavailable"
    with Timer() as probe:
        assert fault_app.test_client().get("/healthz").status_code == 200
    ready = fault_app.test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "OperationalError"
    print(f"\nPostgreSQL killed: page {page.seconds:.2f}s, API {api.seconds:.2f}s, /healthz {probe.seconds:.3f}s")
    assert page.seconds < 1.5 and api.seconds < 1.5 and probe.seconds < 0.5

    pg_proxy.revive()
    assert browser.get("/account/").status_code == 200  # the session survived in Redis


def test_database_frozen_answers_503_within_the_deadline_and_liveness_stays(keys_dir, make_fault_app,
                                                                           pg_proxy, redis_proxy, database):
    """Over real HTTP with several requests held at once: they end at the client deadline
    (statement timeout 1 s + 1 s here), none hangs, and /healthz answers meanwhile."""
    app = make_fault_app(pg_proxy, redis_proxy)
    add_citizen(app)
    port = free_port()
    with serve(app, port) as url:
        session = requests.Session()
        page = session.get(f"{url}/login")
        assert page.status_code == 200
        pg_proxy.freeze()

        def held(_):
            started = time.monotonic()
            response = requests.get(f"{url}/.well-known/openid-configuration", timeout=30)
            r2 = requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                               auth=("x", "y"), timeout=30)
            return response.status_code, r2.status_code, time.monotonic() - started

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(held, i) for i in range(6)]
            time.sleep(0.3)
            with Timer() as probe:
                health = requests.get(f"{url}/healthz", timeout=5)
            results = [f.result() for f in futures]
        assert health.status_code == 200 and probe.seconds < 1.0
        statuses = {(a, b) for a, b, _ in results}
        assert statuses == {(200, 503)}, results  # discovery needs no database; the token endpoint does
        slowest = max(t for _, _, t in results)
        print(f"\nPostgreSQL frozen: 6 parallel token requests answered 503 within {slowest:.2f}s, "
              f"/healthz {probe.seconds:.3f}s")
        assert slowest < 6.0
        with Timer() as ready_probe:
            ready = requests.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready_probe.seconds < 2.5

        pg_proxy.kill()  # drop the frozen connections, then the database is back
        pg_proxy.revive()
        assert session.post(f"{url}/login", data={}).status_code in (200, 400)  # a page again, not 5xx
        assert count_users(database) == 1


def test_short_database_bounce_costs_no_request(fault_app, pg_proxy):
    """Every pooled connection dies with the bounce; the next requests all succeed (a dead
    connection is noticed at checkout and replaced) — none answers 500 or 503."""
    browser = _signed_in(fault_app)
    clients = [fault_app.test_client() for _ in range(4)]
    for c in clients:
        assert login(c, "zhangsan", DEFAULT_PASSWORD).status_code == 302
    for _ in range(3):
        pg_proxy.kill()
        pg_proxy.revive()
        statuses = []
        lock = threading.Lock()

        def visit(c):
            for _ in range(3):
                status = c.get("/account/").status_code
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=visit, args=(c,)) for c in [browser, *clients]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * len(statuses), statuses


def test_multi_host_url_skips_a_host_that_is_down(make_fault_app, pg_proxy, redis_proxy, postgres_url, database):
    """libpq's fail-over form: several ``host=`` parameters, the first one down, and
    ``target_session_attrs=read-write`` so only a primary is taken."""
    real = make_url(postgres_url)
    down = free_port()  # nothing listens there
    url = (f"postgresql+psycopg://{real.username}@/{real.database}"
           f"?host=127.0.0.1:{down}&host={real.host}:{real.port or 5432}&target_session_attrs=read-write")
    app = make_fault_app(pg_proxy, redis_proxy, DATABASE_URL=url)
    add_citizen(app)
    browser = app.test_client()
    assert login(browser, "zhangsan", DEFAULT_PASSWORD).status_code == 302
    assert browser.get("/account/").status_code == 200
    assert app.test_client().get("/readyz").status_code == 200
    assert count_users(database) == 1
