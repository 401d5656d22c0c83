from __future__ import annotations

import json

from idp.extensions import db
from idp.models import Client, User
from idp.services.admin.client_secrets import verify_client_secret


def test_clients_add_prints_the_secret_once_as_json(app, runner):
    result = runner.invoke(args=["clients", "add", "--name", "考生服务系统",
                                 "--redirect-uri", "https://ks.example.gov.cn/callback",
                                 "--post-logout-redirect-uri", "https://ks.example.gov.cn/",
                                 "--scope", "openid profile phone offline_access", "--first-party", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=data["client_id"]))
        assert client.first_party and client.redirect_uris == ["https://ks.example.gov.cn/callback"]
        assert data["client_secret"] not in (client.secret_digest or "")  # stored as a digest only
        assert verify_client_secret(client, data["client_secret"])
        assert not verify_client_secret(client, "wrong")


def test_clients_add_refuses_a_bad_redirect_uri(runner):
    result = runner.invoke(args=["clients", "add", "--name", "x", "--redirect-uri", "http://example.com/cb"])
    assert result.exit_code != 0
    assert "https" in result.output
    result = runner.invoke(args=["clients", "add", "--name", "x", "--redirect-uri", "https://example.com/*"])
    assert "通配符" in result.output


def test_public_client_gets_no_secret(runner):
    result = runner.invoke(args=["clients", "add", "--name", "app", "--redirect-uri", "http://127.0.0.1:3000/cb",
                                 "--public", "--json"])
    assert json.loads(result.stdout)["client_secret"] is None


def test_admin_create(app, runner):
    result = runner.invoke(args=["admin", "create", "--username", "root_admin", "--password", "Admin#2026secure",
                                 "--name", "管理员", "--role", "admin"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(username_key="root_admin"))
        assert user.role == "admin"
    weak = runner.invoke(args=["admin", "create", "--username", "weak_admin", "--password", "password",
                               "--name", "管理员"])
    assert weak.exit_code == 1
    assert "密码" in weak.output


def test_keys_rotate_and_list(app, runner, tmp_path):
    app.config["KEYS_DIR"] = str(tmp_path)
    from idp.oauth import keys

    keys.init_app(app)
    first = runner.invoke(args=["keys", "rotate"])  # one key per algorithm
    second = runner.invoke(args=["keys", "rotate", "--alg", "ES256"])  # that algorithm's only
    assert first.exit_code == second.exit_code == 0
    listing = runner.invoke(args=["keys", "list"]).output.splitlines()
    assert len(listing) == 3
    assert "RS256" in listing[0] and listing[0].endswith("current")
    assert "ES256" in listing[1] and "published until" in listing[1]
    assert "ES256" in listing[2] and listing[2].endswith("current")


def test_init_migrates_and_creates_keys(keys_dir, tmp_path):
    from idp import create_app

    app = create_app("testing", DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite'}",
                     KEYS_DIR=str(tmp_path / "keys"))
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "keys" / "signing" / "keys.json").exists()
    assert "database ready" in result.output
    assert "(RS256)" in result.output and "(ES256)" in result.output
    again = app.test_cli_runner().invoke(args=["init"])  # idempotent
    assert again.exit_code == 0


# -- the installed command, as an operator runs it ------------------------------------------------
def _idp_command(tmp_path, *args, **popen):
    """``idp …`` in a child process on its own SQLite file and keys directory."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_ENV="development", IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}",
               IDP_KEYS_DIR=str(tmp_path / "keys"), PYTHONWARNINGS="ignore")
    idp = Path(sys.executable).with_name("idp")
    if popen:
        return subprocess.Popen([str(idp), *args], env=env, cwd=tmp_path, **popen)
    return subprocess.run([str(idp), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_commands_print_no_alembic_chatter_unless_asked(tmp_path):
    init = _idp_command(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    assert "database ready" in init.stdout
    listing = _idp_command(tmp_path, "keys", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.strip().endswith("current")
    for output in (init.stdout, init.stderr, listing.stdout, listing.stderr):
        assert " alembic." not in output and "Running upgrade" not in output
    verbose = _idp_command(tmp_path, "-v", "keys", "list")
    assert "INFO alembic." in verbose.stderr and verbose.stdout.strip().endswith("current")


def test_serve_serves_until_stopped(tmp_path):
    import json
    import subprocess
    import time
    import urllib.request

    from ..live import free_port

    port = free_port()
    server = _idp_command(tmp_path, "serve", "--port", str(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # it exited: not serving
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    assert json.load(response) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "idp serve did not answer within 30 s"
                time.sleep(0.2)
        with urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=5) as response:
            discovery = json.load(response)
        assert discovery["issuer"] == base  # derived from --port when IDP_ISSUER is unset
        assert discovery["token_endpoint"] == base + "/oauth/token"
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
