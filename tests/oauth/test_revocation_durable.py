"""Revoked access tokens stay revoked when Redis loses its data.

PostgreSQL holds the record of every revocation; Redis's deny-list is its cache.  Each path that
revokes (the revocation endpoint, logout, password change, a withdrawn consent, refresh reuse, a
replayed code) is followed by a FLUSHDB — what a Redis restart without persistence or a failover
to an empty replica does — and the token must still be refused by userinfo and introspection.
"""

from __future__ import annotations

import pytest

from idp.extensions import redis_store

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields, login, login_with_second_factor, submit_form
from .conftest import CodeFlow

NEW_PASSWORD = "Renshe#2027new"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def redis_loses_its_data(app) -> None:
    with app.app_context():
        redis_store.flushdb()


def assert_refused(client, rp, access_token: str) -> None:
    response = client.get("/oauth/userinfo", headers=bearer(access_token))
    assert response.status_code == 401, response.data
    assert response.get_json()["error"] == "invalid_token"
    introspected = client.post("/oauth/introspect", data={"token": access_token}, headers=rp.basic)
    assert introspected.get_json() == {"active": False}


def test_a_token_nobody_revoked_still_works_after_the_loss(app, signed_in_flow):
    tokens = signed_in_flow.tokens()
    redis_loses_its_data(app)
    assert signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_revocation_endpoint_access_token(app, signed_in_flow):
    tokens = signed_in_flow.tokens()
    rp = signed_in_flow.rp
    assert signed_in_flow.client.post("/oauth/revoke", data={"token": tokens["access_token"]},
                                      headers=rp.basic).status_code == 200
    redis_loses_its_data(app)
    assert_refused(app.test_client(), rp, tokens["access_token"])


def test_revocation_endpoint_refresh_token_takes_its_access_tokens(app, signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid offline_access")
    rp = signed_in_flow.rp
    assert signed_in_flow.client.post("/oauth/revoke", data={"token": tokens["refresh_token"],
                                                             "token_type_hint": "refresh_token"},
                                      headers=rp.basic).status_code == 200
    redis_loses_its_data(app)
    assert_refused(app.test_client(), rp, tokens["access_token"])


def test_rp_initiated_logout(app, signed_in_flow):
    tokens = signed_in_flow.tokens()
    response = signed_in_flow.client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert response.status_code in (200, 302)
    redis_loses_its_data(app)
    assert_refused(app.test_client(), signed_in_flow.rp, tokens["access_token"])


def test_password_change(app, signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid offline_access")
    changed = submit_form(signed_in_flow.client, "/account/password", {
        "current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD, "captcha": CAPTCHA})
    assert "密码修改成功" in changed.data.decode()
    redis_loses_its_data(app)
    assert_refused(app.test_client(), signed_in_flow.rp, tokens["access_token"])


def test_withdrawn_consent(app, client, make_client, user):
    rp = make_client(first_party=False)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    flow = CodeFlow(client, rp)
    consent_page = flow.authorize()
    action = "/oauth/authorize?" + consent_page.request.query_string.decode()
    client.post(action, data={"decision": "allow", "csrf_token": form_fields(consent_page.data)["csrf_token"]})
    tokens = flow.tokens()
    page = client.get("/account/sessions")
    fields = {"csrf_token": form_fields(page.data)["csrf_token"], "client_id": rp.client_id}
    assert client.post("/account/authorisations/revoke", data=fields).status_code == 302
    redis_loses_its_data(app)
    assert_refused(app.test_client(), rp, tokens["access_token"])


def test_refresh_token_reuse_revokes_the_family(app, signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid offline_access")
    rp, client = signed_in_flow.rp, signed_in_flow.client
    grant = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = client.post("/oauth/token", data=grant, headers=rp.basic).get_json()
    assert client.post("/oauth/token", data=grant, headers=rp.basic).get_json()["error"] == "invalid_grant"
    redis_loses_its_data(app)
    for access_token in (tokens["access_token"], rotated["access_token"]):
        assert_refused(app.test_client(), rp, access_token)


def test_replayed_code_revokes_what_it_issued(app, signed_in_flow):
    from .conftest import pkce_pair

    verifier, challenge = pkce_pair()
    code, _ = signed_in_flow.code(code_challenge=challenge, code_challenge_method="S256")
    issued = signed_in_flow.exchange(code, verifier=verifier).get_json()
    assert signed_in_flow.exchange(code, verifier=verifier).get_json()["error"] == "invalid_grant"
    redis_loses_its_data(app)
    assert_refused(app.test_client(), signed_in_flow.rp, issued["access_token"])


def test_a_revocation_made_after_the_loss_is_seen_with_the_older_ones(app, signed_in_flow):
    first, second = signed_in_flow.tokens(), signed_in_flow.tokens()
    rp, client = signed_in_flow.rp, signed_in_flow.client
    client.post("/oauth/revoke", data={"token": first["access_token"]}, headers=rp.basic)
    redis_loses_its_data(app)
    # the deny-list is written to again before any check has reloaded it
    client.post("/oauth/revoke", data={"token": second["access_token"]}, headers=rp.basic)
    for token in (first, second):
        assert_refused(app.test_client(), rp, token["access_token"])


@pytest.mark.parametrize("action", ["lock", "logout", "disable"])
def test_administrator_actions(app, client, make_client, make_user, action):
    from idp.services.accounts.records import NewAccount, create_account

    with app.app_context():
        create_account(NewAccount(username="admin01", password=DEFAULT_PASSWORD, name="管理员"),
                       real_name_verified=False, role="admin")
    citizen = make_user("lisi0001")
    rp = make_client(first_party=True)
    browser = app.test_client()
    assert login(browser, citizen.username, DEFAULT_PASSWORD).status_code == 302
    tokens = CodeFlow(browser, rp).tokens()
    assert login_with_second_factor(client, app, "admin01", DEFAULT_PASSWORD).status_code == 302
    response = post_form(client, f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/{action}",
                         {f"{action}-reason": "工单 2026-118 核实"})
    assert response.status_code == 302, response.data.decode()[:400]
    redis_loses_its_data(app)
    assert_refused(app.test_client(), rp, tokens["access_token"])


def post_form(client, page_url: str, action: str, data: dict):
    """Open the page, take the form that posts to ``action`` with its hidden fields, post it."""
    from ..helpers import _FormParser

    page = client.get(page_url)
    assert page.status_code == 200, page.status_code
    parser = _FormParser()
    parser.feed(page.data.decode())
    [form] = [f for f in parser.forms if f["action"] == action]
    return client.post(action, data={**form["fields"], **data})


def test_a_reload_racing_an_uncommitted_revocation_does_not_lose_it(app, signed_in_flow):
    """Redis loses its data between a revocation's write to the deny-list and its commit, and
    another process reloads the deny-list in that gap (it cannot see the uncommitted row): the
    entry is written again once the revocation commits."""
    from idp.extensions import db
    from idp.models import Token
    from idp.services.accounts import revocation

    tokens = signed_in_flow.tokens()
    with app.app_context():
        row = db.session.scalar(db.select(Token).order_by(Token.id.desc()))
        revocation.revoke_access_token(row)
        redis_store.flushdb()
        redis_store.set("revocations:loaded", 1)  # the other process's reload, without this row
        db.session.commit()
    assert_refused(app.test_client(), signed_in_flow.rp, tokens["access_token"])
