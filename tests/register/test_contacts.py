"""Whom to contact when the bank check still fails: the relying system the citizen came from (its
registered contacts), else the platform's service desk (IDP_SERVICE_DESK_*)."""

from __future__ import annotations

from idp.services.admin.clients import ClientSpec, create_client, get_client, spec_of, update_client

from ..oauth.conftest import CodeFlow, RegisteredClient, pkce_pair
from .conftest import CITIZENS

REDIRECT_URI = "https://exam.example.test/callback"
EXAM_CONTACTS = "深圳市考试院 电话：0755-88100099\n邮箱：ksykwb@szhrss.gov.cn"


def _system(app, contacts: str | None) -> RegisteredClient:
    with app.app_context():
        client, secret = create_client(ClientSpec(name="考生服务系统", redirect_uris=[REDIRECT_URI],
                                                  scope="openid profile", first_party=True, contacts=contacts))
        return RegisteredClient(client.client_id, secret, REDIRECT_URI)


def _mismatch_page(wizard) -> str:
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    assert wizard.identity(demo, name="王晓明").status_code == 302
    wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number)
    response = wizard.verification(demo)
    assert response.status_code == 400
    return response.data.decode()


def test_a_citizen_sent_by_a_system_sees_its_contacts_and_the_platforms(app, client, wizard):
    rp = _system(app, EXAM_CONTACTS)
    verifier, challenge = pkce_pair()
    CodeFlow(client, rp).authorize(state="s", code_challenge=challenge, code_challenge_method="S256", prompt="create")
    html = _mismatch_page(wizard)
    assert "若核对信息无误、银行登记的信息也正确，仍无法通过验证，请联系：" in html
    assert "<strong>考生服务系统</strong>：深圳市考试院 电话：0755-88100099；邮箱：ksykwb@szhrss.gov.cn" in html
    assert "<strong>统一用户平台</strong>：服务热线：12333" in html


def test_without_a_system_the_platforms_service_desk_from_the_settings(app, client, wizard):
    app.config.update(SERVICE_DESK_PHONE="0755-12333", SERVICE_DESK_EMAIL="help@hrss.example.gov.cn")
    html = _mismatch_page(wizard)
    assert "<strong>统一用户平台</strong>：服务热线：0755-12333；电子邮箱：help@hrss.example.gov.cn" in html
    assert "考生服务系统</strong>" not in html
    assert "咨询电话 0755-12333" in html  # the footer


def test_a_system_without_contacts_leaves_the_platforms(app, client, wizard):
    rp = _system(app, None)
    verifier, challenge = pkce_pair()
    CodeFlow(client, rp).authorize(state="s", code_challenge=challenge, code_challenge_method="S256", prompt="create")
    html = _mismatch_page(wizard)
    assert "<strong>统一用户平台</strong>：服务热线：12333" in html
    assert "考生服务系统</strong>" not in html


def test_contacts_are_kept_tidy_and_bounded(app):
    rp = _system(app, "  电话：0755-88100099 \n\n 邮箱：a@b.cn  ")
    with app.app_context():
        assert get_client(rp.client_id).contacts == "电话：0755-88100099\n邮箱：a@b.cn"
        spec = spec_of(get_client(rp.client_id))
        spec.contacts = "电话" * 200
        import pytest

        from idp.errors import InvalidField

        with pytest.raises(InvalidField, match="联系方式不能超过300个字"):
            update_client(rp.client_id, spec, reason="测试")
