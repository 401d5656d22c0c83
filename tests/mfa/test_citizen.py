"""Citizens: an optional second factor in the user centre, and relying systems that ask for it
with acr_values — the citizen is stepped up, or the request fails with
unmet_authentication_requirements when there is nothing to step up with."""

from __future__ import annotations

import re

import pyotp
from joserfc import jwt
from joserfc.jwk import KeySet

from ..conftest import DEFAULT_PASSWORD
from ..helpers import csrf_token, form_fields, login, query_params
from ..oauth.conftest import CodeFlow, make_client, pkce_pair, rp  # noqa: F401  (fixtures)

ACR_MFA = "urn:hrss:acr:mfa"


def _enrol(client, clock) -> str:
    page = client.get("/mfa/setup")
    assert page.status_code == 200  # a citizen needs no link
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.data.decode()).group(1)
    assert 'src="data:image/svg+xml' in page.data.decode()  # the QR code, inline
    fields = form_fields(page.data)
    fields.update(code=pyotp.TOTP(secret).at(clock.now), label="我的手机")
    assert client.post("/mfa/setup", data=fields).headers["Location"] == "/mfa/recovery-codes"
    assert len(re.findall(r"<li><code>", client.get("/mfa/recovery-codes").data.decode())) == 10
    return secret


def test_discovery_advertises_the_mfa_level(client):
    assert ACR_MFA in client.get("/.well-known/openid-configuration").get_json()["acr_values_supported"]


def test_a_citizen_enrols_in_the_security_centre_and_still_signs_in_with_the_password(app, client, user, clock):
    assert login(client, user.username, DEFAULT_PASSWORD).headers["Location"] == "/account/"
    assert 'href="/mfa/"' in client.get("/account/").data.decode()
    _enrol(client, clock)
    home = client.get("/mfa/").data.decode()
    assert "我的手机" in home and "剩余恢复码：10" in home
    client.get("/logout")
    # optional for citizens: the password signs in; a relying system may ask for more
    assert login(client, user.username, DEFAULT_PASSWORD).headers["Location"] == "/account/"


def test_acr_values_steps_a_citizen_up(app, client, user, rp, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    secret = _enrol(client, clock)
    with client.session_transaction() as sess:
        assert sess["acr"] != ACR_MFA  # enrolling does not make this login a two-factor one
    flow = CodeFlow(client, rp)
    verifier, challenge = pkce_pair()
    asked = flow.authorize(acr_values=ACR_MFA, state="s1", code_challenge=challenge, code_challenge_method="S256")
    assert asked.status_code == 302 and asked.headers["Location"] == "/mfa/verify"
    token = csrf_token(client.get("/mfa/verify").data)
    clock.advance(30)
    answered = client.post("/mfa/verify", data={"csrf_token": token, "method": "totp",
                                                "code": pyotp.TOTP(secret).at(clock.now)})
    assert answered.headers["Location"].startswith("/oauth/authorize?")
    final = client.get(answered.headers["Location"])
    params = query_params(final.headers["Location"])
    assert params["state"] == "s1"
    tokens = flow.exchange(params["code"], verifier=verifier).get_json()
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    # the stepped-up login satisfies the next request at once
    again = flow.authorize(acr_values=ACR_MFA)
    assert "code" in query_params(again.headers["Location"])


def test_acr_values_without_an_enrolled_factor_is_refused_in_the_redirect(client, user, rp):
    login(client, user.username, DEFAULT_PASSWORD)
    response = CodeFlow(client, rp).authorize(acr_values=ACR_MFA, state="s2")
    assert response.status_code == 302 and response.headers["Location"].startswith(rp.redirect_uri)
    params = query_params(response.headers["Location"])
    assert params["error"] == "unmet_authentication_requirements"
    assert params["state"] == "s2" and params["iss"] == "http://localhost"


def test_a_level_the_login_already_has_is_enough(client, user, rp):
    login(client, user.username, DEFAULT_PASSWORD)
    response = CodeFlow(client, rp).authorize(acr_values=f"{ACR_MFA} urn:hrss:acr:realname")
    assert "code" in query_params(response.headers["Location"])


def test_prompt_none_cannot_step_up(client, user, rp, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    _enrol(client, clock)
    response = CodeFlow(client, rp).authorize(acr_values=ACR_MFA, prompt="none")
    assert query_params(response.headers["Location"])["error"] == "interaction_required"


def test_removing_a_factor_wants_a_recent_second_factor(app, client, user, clock):
    login(client, user.username, DEFAULT_PASSWORD)
    secret = _enrol(client, clock)
    page = client.get("/mfa/")
    action = re.search(r'action="(/mfa/factors/\d+/remove)"', page.data.decode()).group(1)
    token = csrf_token(page.data)
    asked = client.post(action, data={"csrf_token": token})
    assert asked.headers["Location"] == "/mfa/verify"
    clock.advance(30)
    done = client.post("/mfa/verify", data={"csrf_token": token, "method": "totp",
                                            "code": pyotp.TOTP(secret).at(clock.now)})
    assert done.headers["Location"] == "/mfa/"
    assert client.post(action, data={"csrf_token": token}).headers["Location"] == "/mfa/"
    assert "您尚未绑定第二因素" in client.get("/mfa/").data.decode()
