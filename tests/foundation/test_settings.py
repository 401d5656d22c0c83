from __future__ import annotations

import logging

import pytest

from idp import create_app
from idp.config import ConfigError, load_config


def test_production_refuses_to_start_without_real_settings(monkeypatch):
    for name in ("IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_ISSUER", "IDP_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as info:
        load_config("production")
    message = str(info.value)
    for expected in ("IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_ISSUER must be an https", "IDP_SECRET_KEY",
                     "IDP_BANK_URL", "IDP_REGISTRY_URL"):
        assert expected in message


def test_production_refuses_the_fixed_captcha(monkeypatch):
    monkeypatch.setenv("IDP_DATABASE_URL", "postgresql+psycopg://idp@db/idp")
    monkeypatch.setenv("IDP_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("IDP_ISSUER", "https://id.example.gov.cn")
    monkeypatch.setenv("IDP_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("IDP_BANK_URL", "https://bank-verify.example.gov.cn")
    monkeypatch.setenv("IDP_SMS_BACKEND", "http")
    monkeypatch.setenv("IDP_BANK_SECRET", "agreed-with-the-bank-platform-" + "z" * 16)
    monkeypatch.setenv("IDP_PII_KEY", "33" * 32)
    _set_registry(monkeypatch)
    config = load_config("production")  # complete and safe: accepted
    assert config.SECURE_COOKIES is True
    monkeypatch.setenv("IDP_CAPTCHA_FIXED", "1234")
    with pytest.raises(ConfigError, match="IDP_CAPTCHA_FIXED"):
        load_config("production")


def test_production_refuses_the_sandbox_bank_secret_and_a_missing_pii_key(monkeypatch):
    for name, value in (("IDP_DATABASE_URL", "postgresql+psycopg://idp@db/idp"), ("IDP_REDIS_URL", "redis://cache"),
                        ("IDP_ISSUER", "https://id.example.gov.cn"), ("IDP_SECRET_KEY", "x" * 40),
                        ("IDP_BANK_URL", "https://bank-verify.example.gov.cn"), ("IDP_SMS_BACKEND", "http")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDP_BANK_SECRET", raising=False)
    monkeypatch.delenv("IDP_PII_KEY", raising=False)
    monkeypatch.setenv("IDP_REGISTRY_URL", "https://registry-verify.example.gov.cn")
    monkeypatch.delenv("IDP_REGISTRY_SECRET", raising=False)
    with pytest.raises(ConfigError) as refused:
        load_config("production")
    message = str(refused.value)
    assert "IDP_BANK_SECRET is the sandbox's published secret" in message
    assert "IDP_REGISTRY_SECRET is the sandbox's published secret" in message
    assert "IDP_PII_KEY must hold the personal-data key" in message
    monkeypatch.setenv("IDP_BANK_SECRET", "agreed-with-the-bank-platform-" + "z" * 16)
    monkeypatch.setenv("IDP_PII_KEY", "33" * 32)
    _set_registry(monkeypatch)
    load_config("production")


def _set_registry(monkeypatch):
    monkeypatch.setenv("IDP_REGISTRY_URL", "https://registry-verify.example.gov.cn")
    monkeypatch.setenv("IDP_REGISTRY_SECRET", "agreed-with-the-registry-" + "r" * 16)


def test_production_never_generates_a_pii_key_on_disk(tmp_path):
    from flask import Flask

    from idp.services.identity import pii

    app = Flask("probe")
    app.config.update(ENV_NAME="production", PII_KEY="", KEYS_DIR=str(tmp_path))
    with pytest.raises(pii.PersonalDataKeyError, match="IDP_PII_KEY is required in production"):
        pii.init_app(app)
    assert not (tmp_path / "pii.key").exists()
    app.config.update(ENV_NAME="development")
    pii.init_app(app)  # development keeps its generated key
    assert (tmp_path / "pii.key").exists()


def test_every_setting_is_overridable_by_environment(monkeypatch):
    monkeypatch.setenv("IDP_ACCESS_TOKEN_LIFETIME", "123")
    monkeypatch.setenv("IDP_DEV_TOOLS", "false")
    monkeypatch.setenv("IDP_ISSUER", "http://127.0.0.1:9999")
    config = load_config("development")
    assert config.ACCESS_TOKEN_LIFETIME == 123 and config.DEV_TOOLS is False
    assert config.ISSUER == "http://127.0.0.1:9999"
    monkeypatch.setenv("IDP_ACCESS_TOKEN_LIFETIME", "soon")
    with pytest.raises(ConfigError, match="must be a number"):
        load_config("development")


def test_unknown_environment_name():
    with pytest.raises(ConfigError, match="choose one of"):
        load_config("staging")


def test_missing_redis_url_warns_that_the_stand_in_serves_one_process(keys_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="idp.extensions"):
        create_app("testing", DATABASE_URL="sqlite://", REDIS_URL="", KEYS_DIR=str(keys_dir))
    assert any("one process only" in r.getMessage() for r in caplog.records)


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok", "signing_key": "ok"}


def test_readiness_fails_without_signing_keys(keys_dir, tmp_path):
    from ..conftest import make_app

    app = make_app(keys_dir)
    app.config["KEYS_DIR"] = str(tmp_path)
    from idp.oauth import keys

    keys.init_app(app)  # a key store over an empty directory
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["signing_key"] == "RuntimeError"


def test_metrics_count_requests_and_audit_events(app, client, user):
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login

    login(client, user.username, DEFAULT_PASSWORD)
    body = client.get("/metrics").data.decode()
    assert 'idp_audit_events_total{event="login",outcome="success"}' in body
    assert 'idp_http_requests_total{endpoint="auth.login",method="POST",status="302"}' in body
    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_metrics_are_refused_in_production_without_a_token(app, client):
    app.config["ENV_NAME"] = "production"  # the rest of production's settings do not matter here
    assert client.get("/metrics").status_code == 404
    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_protocol_lifetimes_are_settings(monkeypatch, keys_dir):
    from ..conftest import make_app

    monkeypatch.setenv("IDP_CLIENT_CACHE_SECONDS", "0")
    monkeypatch.setenv("IDP_SIGNING_KEYS_RECHECK_SECONDS", "2")
    app = make_app(keys_dir)
    assert app.config["CLIENT_CACHE_SECONDS"] == 0.0
    assert app.test_client().get("/.well-known/jwks.json").headers["Cache-Control"] == "public, max-age=2"


def test_json_logs_in_production_format(capsys):
    import json

    from idp import configure_logging

    configure_logging("INFO", "json")
    try:
        logging.getLogger("idp.test").info("hello %s", "世界")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["message"] == "hello 世界" and record["level"] == "INFO"
    finally:
        configure_logging("INFO", "text")


# -- one home for policy ------------------------------------------------------------------------
def _declared_settings() -> set[str]:
    from idp.config import BaseConfig

    return {name for name in dir(BaseConfig) if name.isupper() and name != "ENV_NAME"}


def test_the_readme_lists_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert sorted(n for n in _declared_settings() if f"IDP_{n}" not in readme) == []


def test_the_code_reads_only_declared_settings():
    """A setting read but not declared in idp/config.py cannot be set by IDP_* and hides a literal."""
    import re
    from pathlib import Path

    flask_and_extensions = {
        "TESTING", "DEBUG", "SECRET_KEY", "SERVER_NAME", "SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE",
        "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "PERMANENT_SESSION_LIFETIME",
        "WTF_CSRF_ENABLED", "PREFERRED_URL_SCHEME", "RATELIMIT_STORAGE_URI", "RATELIMIT_STORAGE_OPTIONS",
        "ENV_NAME",  # which defaults are in force (IDP_ENV), not a setting of its own
    }
    root = Path(__file__).resolve().parents[2] / "idp"
    read = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"config\[\"([A-Z][A-Z0-9_]+)\"\]", text))
        read |= set(re.findall(r"config\.get\(\"([A-Z][A-Z0-9_]+)\"", text))
        read |= set(re.findall(r"cfg\[\"([A-Z][A-Z0-9_]+)\"\]", text))
    assert sorted(read - _declared_settings() - flask_and_extensions) == []
