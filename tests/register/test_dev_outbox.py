"""The development SMS outbox: a page and JSON, only where DEV_TOOLS is on."""

from __future__ import annotations

import pytest

from idp.services.verification.sms import SmsCode

from ..conftest import clean_external_db, make_app


def _send(app, phone: str, purpose: str = "register") -> None:
    with app.test_request_context("/"):
        SmsCode(purpose).send(phone)


def test_outbox_json_newest_first_and_filtered(app, client):
    _send(app, "13800138000")
    _send(app, "13900139000")
    _send(app, "13800138000", "recovery")
    everything = client.get("/dev/sms-outbox.json").get_json()["messages"]
    assert [m["phone"] for m in everything] == ["13800138000", "13900139000", "13800138000"]
    mine = client.get("/dev/sms-outbox.json?phone=%2B86%20138%200013%208000")
    assert mine.headers["Cache-Control"] == "no-store"
    messages = mine.get_json()["messages"]
    assert [m["purpose"] for m in messages] == ["recovery", "register"]
    assert set(messages[0]) == {"phone", "text", "purpose", "sent_at"}
    assert client.get("/dev/sms-outbox.json?phone=13700000000").get_json() == {"messages": []}
    assert len(client.get("/dev/sms-outbox.json?limit=1").get_json()["messages"]) == 1


def test_outbox_page(app, client):
    _send(app, "13800138000")
    page = client.get("/dev/sms-outbox?phone=13800138000")
    html = page.data.decode()
    assert page.status_code == 200
    assert "短信发件箱（开发环境）" in html and "您的注册验证码为" in html
    assert '<label for="phone">手机号码</label>' in html
    assert "没有短信" in client.get("/dev/sms-outbox?phone=13900139000").data.decode()


def test_no_outbox_without_dev_tools(keys_dir):
    app = make_app(keys_dir, DEV_TOOLS=False)
    try:
        client = app.test_client()
        assert client.get("/dev/sms-outbox").status_code == 404
        assert client.get("/dev/sms-outbox.json").status_code == 404
    finally:
        clean_external_db(app)


def test_production_refuses_the_outbox_and_dev_tools():
    from idp.config import ConfigError, load_config

    with pytest.raises(ConfigError) as refused:
        load_config("production", DATABASE_URL="postgresql+psycopg://x/y", REDIS_URL="redis://x", ISSUER="https://id.example",
                    SECRET_KEY="k" * 40, DEV_TOOLS=True, SMS_BACKEND="outbox", BANK_URL="")
    message = str(refused.value)
    assert "IDP_DEV_TOOLS" in message and "IDP_SMS_BACKEND=outbox" in message and "IDP_BANK_URL" in message
