"""The exam service's settings and its sealing of stored ID tokens."""

from __future__ import annotations

import pytest

from clients.exam.config import ExamConfigError, load_config
from clients.exam.sealing import SealBroken, TokenSeal


def test_production_refuses_unsafe_settings(monkeypatch):
    for name in ("EXAM_SECRET_KEY", "EXAM_DATA_KEY", "EXAM_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ExamConfigError) as refused:
        load_config("production", CLIENT_ID="exam-service", ISSUER="http://idp.example.test",
                    BASE_URL="http://ks.example.test")
    message = str(refused.value)
    for expected in ("EXAM_CLIENT_SECRET", "EXAM_ISSUER must be an https:// URL", "EXAM_BASE_URL must be an https://",
                     "EXAM_SECRET_KEY", "EXAM_DATA_KEY"):
        assert expected in message


def test_production_accepts_complete_settings():
    config = load_config("production", CLIENT_ID="exam-service", CLIENT_SECRET="s" * 43,
                         ISSUER="https://idp.example.test/", BASE_URL="https://ks.example.test",
                         SECRET_KEY="k" * 48, DATA_KEY="ab" * 32)
    assert config.ISSUER == "https://idp.example.test"  # trailing slash dropped: issuers compare exactly
    assert config.redirect_uri == "https://ks.example.test/auth/callback"
    assert config.SECURE_COOKIES is True


def test_a_client_id_is_required_everywhere(monkeypatch):
    monkeypatch.delenv("EXAM_CLIENT_ID", raising=False)
    with pytest.raises(ExamConfigError, match="EXAM_CLIENT_ID"):
        load_config("development")


def test_environment_overrides_and_derived_links(monkeypatch):
    monkeypatch.setenv("EXAM_ISSUER", "https://idp.example.test")
    monkeypatch.setenv("EXAM_CLIENT_ID", "from-env")
    monkeypatch.setenv("EXAM_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("EXAM_PASSWORD_URL", "https://idp.example.test/xgmm")
    config = load_config("development")
    assert config.CLIENT_ID == "from-env" and config.HTTP_TIMEOUT == 2.5
    assert config.ACCOUNT_URL == "https://idp.example.test/account/"
    assert config.PASSWORD_URL == "https://idp.example.test/xgmm"


def test_bad_values_are_named(monkeypatch):
    monkeypatch.setenv("EXAM_SECURE_COOKIES", "maybe")
    with pytest.raises(ExamConfigError, match="EXAM_SECURE_COOKIES must be true or false"):
        load_config("development", CLIENT_ID="x")
    with pytest.raises(ExamConfigError, match="EXAM_ENV"):
        load_config("staging")


def test_sealed_id_tokens_open_only_unaltered_and_under_their_key():
    seal = TokenSeal(bytes(range(32)))
    sealed = seal.seal("header.payload.signature")
    assert "payload" not in sealed
    assert seal.open(sealed) == "header.payload.signature"
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealBroken):
        seal.open(tampered)
    with pytest.raises(SealBroken):
        TokenSeal(bytes(32)).open(sealed)
    with pytest.raises(ExamConfigError):
        TokenSeal(b"short")
