"""最低认证级别: a relying system registers the least acr it accepts, and every authorization
request of it wants that level, whether or not it sends acr_values."""

from __future__ import annotations

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.errors import InvalidField
from idp.services.admin.clients import ClientSpec, export_client, normalise_spec, spec_from_export

from ..conftest import DEFAULT_PASSWORD
from ..helpers import csrf_token, login, query_params
from ..oauth.conftest import CodeFlow, make_client, pkce_pair  # noqa: F401  (fixtures)
from .test_citizen import _enrol

ACR_MFA = "urn:hrss:acr:mfa"


@pytest.fixture
def strict_rp(make_client):
    return make_client(first_party=True, min_acr=ACR_MFA)


def test_a_minimum_acr_steps_the_citizen_up_without_acr_values(client, user, strict_rp, make_client, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    secret = _enrol(client, clock)
    # a system without a minimum is entered with the password login as it is
    lenient = make_client(first_party=True, redirect_uris=["https://lenient.example.test/cb"])
    assert "code" in query_params(CodeFlow(client, lenient).authorize().headers["Location"])

    flow = CodeFlow(client, strict_rp)
    verifier, challenge = pkce_pair()
    asked = flow.authorize(state="s-min", code_challenge=challenge, code_challenge_method="S256")
    assert asked.status_code == 302 and asked.headers["Location"] == "/mfa/verify"
    clock.advance(30)
    answered = client.post("/mfa/verify", data={"csrf_token": csrf_token(client.get("/mfa/verify").data),
                                                "method": "totp", "code": pyotp.TOTP(secret).at(clock.now)})
    final = client.get(answered.headers["Location"])
    params = query_params(final.headers["Location"])
    assert params["state"] == "s-min"
    tokens = flow.exchange(params["code"], verifier=verifier).get_json()
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    assert jwt.decode(tokens["id_token"], keys).claims["acr"] == ACR_MFA


def test_a_lower_level_in_acr_values_does_not_lower_the_minimum(client, user, strict_rp, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    _enrol(client, clock)
    with client.session_transaction() as sess:
        level = sess["acr"]
    assert level != ACR_MFA
    asked = CodeFlow(client, strict_rp).authorize(acr_values=level)
    assert asked.headers["Location"] == "/mfa/verify"


def test_without_a_factor_the_system_gets_unmet_authentication_requirements(client, user, strict_rp):
    login(client, user.username, DEFAULT_PASSWORD)
    response = CodeFlow(client, strict_rp).authorize(state="s-none")
    assert response.status_code == 302 and response.headers["Location"].startswith(strict_rp.redirect_uri)
    params = query_params(response.headers["Location"])
    assert params["error"] == "unmet_authentication_requirements" and params["state"] == "s-none"
    assert "code" not in params


def test_prompt_none_cannot_meet_the_minimum(client, user, strict_rp, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    _enrol(client, clock)
    response = CodeFlow(client, strict_rp).authorize(prompt="none")
    assert query_params(response.headers["Location"])["error"] == "interaction_required"


def test_a_minimum_met_at_login_needs_nothing_more(app, client, make_staff, strict_rp):
    """A staff account signs in with its second factor: its login already has the level."""
    from ..helpers import login_with_second_factor

    login_with_second_factor(client, app, make_staff("operator"), DEFAULT_PASSWORD)
    response = CodeFlow(client, strict_rp).authorize()
    assert "code" in query_params(response.headers["Location"])


def test_the_minimum_is_checked_and_travels_with_an_export(app, strict_rp):
    with app.app_context():
        with pytest.raises(InvalidField) as refused:
            normalise_spec(ClientSpec(name="级别", redirect_uris=["https://rp.example.test/cb"],
                                      min_acr="urn:hrss:acr:gold"))
        assert refused.value.field == "min_acr"
        document = export_client(strict_rp.client_id)
        assert document["min_acr"] == ACR_MFA
        assert spec_from_export(document).min_acr == ACR_MFA


def test_the_console_form_sets_the_minimum(app, client, make_staff, strict_rp):
    from ..helpers import login_with_second_factor
    from ..oauth.conftest import REDIRECT_URI

    login_with_second_factor(client, app, make_staff("admin"), DEFAULT_PASSWORD)
    url = f"/admin/clients/{strict_rp.client_id}/edit"
    page = client.get(url).data.decode()
    assert f'<option selected value="{ACR_MFA}">' in page  # prefilled
    fields = {"csrf_token": csrf_token(page), "name": "考生服务系统", "client_type": "confidential",
              "redirect_uris": REDIRECT_URI, "scopes": ["openid", "profile", "phone", "realname", "offline_access"],
              "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic",
              "first_party": "y", "subject_type": "public", "allowed_user_types": "personal",
              "min_acr": "", "frontchannel_logout_uri": "https://rp.example.test/fc",
              "frontchannel_logout_session_required": "y", "reason": "取消最低认证级别，登记前端登出地址"}
    saved = client.post(url, data=fields)
    assert saved.status_code == 302, saved.data.decode()[:2000]
    shown = client.get(f"/admin/clients/{strict_rp.client_id}").data.decode()
    assert "<code>https://rp.example.test/fc</code>（附带 iss 和 sid）" in shown and "不要求" in shown
    with app.app_context():
        document = export_client(strict_rp.client_id)
    assert document["min_acr"] is None and document["frontchannel_logout_session_required"] is True
    fields.update(frontchannel_logout_uri="http://rp.example.test/fc")
    refused = client.post(url, data=fields)
    assert refused.status_code == 400 and "前端登出地址须为 https 地址" in refused.data.decode()
    assert 'value="http://rp.example.test/fc"' in refused.data.decode()  # the input is kept
