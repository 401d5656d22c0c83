"""The production command of the README, started as an operator would: granian serving ``wsgi:app``
with production settings, answering ``/healthz`` over real HTTP."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..live import free_port

REPO = Path(__file__).resolve().parents[2]


def documented_command() -> list[str]:
    """The command in the README's Production section (the block that starts granian)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    production = readme[readme.index("## Production"):]
    found = re.search(r"^\s*(IDP_ENV=production granian .*?)\n\s*```", production, re.S | re.M)
    assert found, "the README's Production section names no granian command"
    words = shlex.split(found.group(1).replace("\\\n", " "))
    assert words[0] == "IDP_ENV=production" and words[1] == "granian" and words[-1] == "wsgi:app"
    return words[1:]


def test_the_documented_production_command_serves(tmp_path):
    command = documented_command()
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[0] = str(Path(sys.executable).with_name("granian"))
    # production settings as validated at start-up; the stores are named but unreachable:
    # liveness must not need them (the README's Reliability section)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ENV="production", IDP_DATABASE_URL="postgresql+psycopg://idp@127.0.0.1:1/idp",
        IDP_REDIS_URL="redis://127.0.0.1:1/0", IDP_ISSUER="https://idp.example.gov.cn",
        IDP_SECRET_KEY="s" * 48, IDP_SMS_BACKEND="http", IDP_SMS_URL="https://sms.example.gov.cn/send",
        IDP_BANK_URL="https://bank.example.gov.cn", IDP_BANK_SECRET="agreed-with-the-bank",
        IDP_REGISTRY_URL="https://registry.example.gov.cn", IDP_REGISTRY_SECRET="agreed-with-the-registry",
        IDP_PII_KEY="ab" * 32, IDP_KEYS_DIR=str(tmp_path / "keys"), PYTHONWARNINGS="ignore",
    )
    log = (tmp_path / "server.log").open("w+")
    server = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90  # two workers import the app; slow on a busy machine
        while True:
            assert server.poll() is None, f"the server exited:\n{(tmp_path / 'server.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    assert json.load(response) == {"status": "ok"}
                    assert response.headers["Server"] == "granian"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the production command did not answer /healthz within 90 s"
                time.sleep(0.3)
    finally:
        # the whole process group: a worker still importing the app may outlive its main process
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait()
        log.close()
