"""Seed a fresh provider for the benchmark: database and signing keys (``idp init``), one first-party
web client (code + PKCE + refresh), one service client (client_credentials) and N citizen accounts.

Run with the same IDP_* environment as the server (``bench/run.py`` does); prints one JSON object
with the client credentials and the accounts on stdout.  Accounts go through
``accounts.create_account``, the path the CLI's ``idp admin create`` takes, so passwords are hashed
with the configured argon2id parameters.
"""

from __future__ import annotations

import argparse
import json
import sys

from idp import create_app
from idp.cli.core import init_database_and_keys
from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--password", required=True)
    parser.add_argument("--redirect-uri", required=True)
    args = parser.parse_args()

    app = create_app()
    with app.app_context():
        init_database_and_keys()
        web, web_secret = create_client(
            ClientSpec(
                name="压测网站", client_id="bench-web", redirect_uris=[args.redirect_uri],
                scope="openid profile offline_access", first_party=True,
            ),
        )
        service, service_secret = create_client(
            ClientSpec(name="压测服务", client_id="bench-service", client_type="service", scope="openid"),
        )
        users = []
        for n in range(args.users):
            username = f"bench{n:03d}"
            create_account(
                NewAccount(username=username, password=args.password, name=f"压测用户{n}"),
                # citizens: a staff role would send the login to its second factor
                real_name_verified=False, role=None, actor="bench",
            )
            users.append(username)
        # the parameters the stored hashes were made with ($argon2id$v=19$m=…,t=…,p=…$…), not
        # only the configured ones: the flow's cost is the hash's
        from idp.extensions import db
        from idp.models import User

        stored = db.session.scalar(db.select(User.password_hash).filter_by(username_key=users[0]))
        params = dict(pair.split("=") for pair in stored.split("$")[3].split(","))
        json.dump(
            {
                "web": {"client_id": web.client_id, "client_secret": web_secret},
                "service": {"client_id": service.client_id, "client_secret": service_secret},
                "users": users,
                "argon2": {
                    "memory_kib": app.config["ARGON2_MEMORY_KIB"],
                    "time_cost": app.config["ARGON2_TIME_COST"],
                    "parallelism": app.config["ARGON2_PARALLELISM"],
                    "type": stored.split("$")[1],
                    "stored": {"memory_kib": int(params["m"]), "time_cost": int(params["t"]),
                               "parallelism": int(params["p"])},
                },
            },
            sys.stdout,
        )


if __name__ == "__main__":
    main()
