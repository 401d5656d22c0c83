"""Production code does not depend on the sandboxes: importing every module of ``idp.services``
in a fresh interpreter loads no ``idp.sandbox`` module (the app factory wires them in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import idp

SCRIPT = """
import importlib, json, pkgutil, sys
import idp.services
names = [m.name for m in pkgutil.walk_packages(idp.services.__path__, "idp.services.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "sandbox": sorted(m for m in sys.modules if m.startswith("idp.sandbox"))}))
"""


def test_services_import_no_sandbox_module():
    root = Path(idp.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=60,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "idp.services.verification.bank" in result["imported"] and "idp.services.limits" in result["imported"]
    assert result["sandbox"] == []


def test_production_gets_no_sandbox_bank(keys_dir):
    from idp import create_app
    from idp.config import ProductionConfig

    config = ProductionConfig(DATABASE_URL="sqlite://", REDIS_URL="", ISSUER="https://id.example",
                              SECRET_KEY="p" * 40, KEYS_DIR=str(keys_dir), PII_KEY="44" * 32)
    app = create_app(config)
    assert "idp_bank_transport" not in app.extensions and "idp_sms" not in app.extensions
