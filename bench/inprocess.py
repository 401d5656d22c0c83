"""CPU per request of the protocol endpoints, measured in this process (no server, no load generator).

A loaded machine makes requests-per-second figures noisy; the CPU time one request costs this
process (``time.process_time`` over N WSGI calls) is not.  Each endpoint is called ``--requests``
times per run, ``--runs`` times; the median µs per request is printed, with min and max.

    .venv/bin/python bench/inprocess.py                          # SQLite + in-process fakeredis
    .venv/bin/python bench/inprocess.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_inprocess \\
        --redis-url redis://127.0.0.1:6379/14                     # wipes both, like bench/run.py
    .venv/bin/python bench/inprocess.py --profile userinfo       # cProfile of one endpoint

PostgreSQL's and Redis's own CPU is not counted here (bench/run.py counts it): only the Python
process's, which includes the client side of each round trip.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
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


def build_app(database_url: str, redis_url: str, keys_dir: str, access_token_alg: str = "RS256"):
    app = create_app(
        "development", DATABASE_URL=database_url, REDIS_URL=redis_url, KEYS_DIR=keys_dir,
        LOG_LEVEL="WARNING", ARGON2_MEMORY_KIB=1024, ARGON2_TIME_COST=1, ACCESS_TOKEN_ALG=access_token_alg,
    )
    with app.app_context():
        from flask_migrate import upgrade

        if database_url.startswith("postgresql"):
            if "bench" not in database_url.rsplit("/", 1)[-1]:
                raise SystemExit("the database name must contain 'bench' (it is wiped)")
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
        web, _ = create_client(ClientSpec(
            name="压测网站", client_id="bench-web", redirect_uris=["https://rp.example/cb"],
            scope="openid profile phone realname offline_access", first_party=True))
        service, service_secret = create_client(
            ClientSpec(name="压测服务", client_id="bench-service", client_type="service", scope="openid"))
        user = create_account(
            NewAccount(username="bench000", password="Kaoshi#2026ok", name="压测用户", id_type="resident_id",
                       id_number="440303198512124562", phone="13800130001"),
            real_name_verified=True, role=None, actor="bench")
        token = issue_access_token(web, user, "openid profile phone realname", {})
        return dict(service_id=service.client_id, service_secret=service_secret, access_token=token)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", action="append", help="endpoint name prefix (repeatable)")
    parser.add_argument("--access-token-alg", default="RS256", choices=["RS256", "ES256"])
    parser.add_argument("--profile", help="cProfile one endpoint (name prefix) and print the top functions")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        app = build_app(database_url, args.redis_url, str(Path(tmp) / "keys"), args.access_token_alg)
        seeded = seed(app)
        seeded["service_token"] = service_token(app, seeded)
        calls = {name: caller(app, b, body) for name, (b, body) in requests_of(seeded).items()}
        for name, call in calls.items():
            status = call()
            if not status.startswith("200"):
                raise SystemExit(f"{name}: {status}")
        if args.profile:
            name = next(n for n in calls if n.startswith(args.profile))
            profiler = cProfile.Profile()
            profiler.runcall(measure, calls[name], args.requests)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
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
