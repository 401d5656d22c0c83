"""个人信息与隐私 and 注销账号 over HTTP: a relying system that received claims, the SMS outbox."""

from __future__ import annotations

import re

import pytest

from ..oauth.conftest import CodeFlow, make_client, rp  # noqa: F401  (fixtures)


def outbox(client, phone: str) -> list[dict]:
    return client.get("/dev/sms-outbox.json", query_string={"phone": phone}).get_json()["messages"]


def outbox_code(client, phone: str) -> str:
    messages = [m for m in outbox(client, phone) if "验证码为" in m["text"]]
    assert messages, f"no SMS code to {phone}"
    return re.search(r"验证码为(\d{6})", messages[0]["text"]).group(1)


@pytest.fixture
def user_phone(app, user) -> str:
    from idp.extensions import db
    from idp.models import User
    from idp.services.accounts.records import decrypted

    with app.app_context():
        return decrypted(db.session.get(User, user.id), "phone")
