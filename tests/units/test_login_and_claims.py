"""单位用户 at the login page and at relying systems: the two tabs, the claims (``user_type``, the
``unit`` scope), 允许登录的用户类型 enforced before a code is issued, in the console and the CLI."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuditEvent, Client
from idp.services.identity.units import UnitInfo

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, query_params, submit_form
from ..oauth.conftest import CodeFlow
from .conftest import unit

HANDLER_ID = "440304199001011233"


@pytest.fixture
def unit_user(make_user):
    u = unit(demo=True)
    return make_user(username="unit_demo", name="李娜", user_type="unit", id_number=HANDLER_ID,
                     unit=UnitInfo(u.unit_name, u.unit_id_type, u.uscc, u.unit_type, u.legal_rep_name))


def login_as(client, username, *, tab=None):
    url = "/login" + ("?type=unit" if tab == "unit" else "")
    return submit_form(client, url, {"username": username, "password": DEFAULT_PASSWORD, "captcha": CAPTCHA})


def test_the_login_page_has_two_tabs(client):
    page = client.get("/login").data.decode()
    assert "个人用户登录" in page and "单位用户登录" in page and 'name="user_type"' in page
    assert 'value="unit"' in client.get("/login?type=unit").data.decode()


def test_a_unit_account_logs_in_under_its_tab_only(app, client, unit_user):
    wrong = login_as(client, "unit_demo")
    assert wrong.status_code == 400 and "用户名或密码错误" in wrong.data.decode()
    right = login_as(client, "unit_demo", tab="unit")
    assert right.status_code == 302
    with app.app_context():
        reasons = [e.details.get("reason") for e in db.session.scalars(
            db.select(AuditEvent).filter_by(event="login", outcome="failure"))]
        assert "wrong_user_type" in reasons


def test_a_personal_account_on_the_unit_tab_gets_the_same_generic_error(client, user):
    wrong = login_as(client, user.username, tab="unit")
    unknown = login_as(client, "nobody_here", tab="unit")
    assert wrong.status_code == unknown.status_code == 400
    assert "用户名或密码错误" in wrong.data.decode() and "用户名或密码错误" in unknown.data.decode()
    assert login_as(client, user.username).status_code == 302


def test_a_unit_account_is_refused_by_a_persons_only_system_before_any_code(client, unit_user, make_client):
    rp = make_client(first_party=True)  # default: 个人 only
    assert login_as(client, "unit_demo", tab="unit").status_code == 302
    response = CodeFlow(client, rp).authorize()
    page = response.data.decode()
    assert response.status_code == 403 and "code=" not in response.headers.get("Location", "")
    assert "仅允许<strong>个人用户</strong>登录" in page and "单位用户账号" in page


def test_a_person_is_refused_by_a_units_only_system(client, user, make_client):
    rp = make_client(first_party=True, allowed_user_types="unit")
    assert login_as(client, user.username).status_code == 302
    response = CodeFlow(client, rp).authorize()
    assert response.status_code == 403 and "仅允许<strong>单位用户</strong>登录" in response.data.decode()
    assert "/login?type=unit" in response.data.decode()


def test_prompt_none_gets_login_required_not_a_code(client, unit_user, make_client):
    rp = make_client(first_party=True)
    login_as(client, "unit_demo", tab="unit")
    response = CodeFlow(client, rp).authorize(prompt="none")
    assert response.status_code == 302
    assert query_params(response.headers["Location"]).get("error") == "login_required"


def test_claims_of_a_unit_at_a_system_that_accepts_units(app, client, unit_user, make_client):
    rp = make_client(first_party=True, allowed_user_types="both",
                     scope="openid profile phone realname unit offline_access")
    login_as(client, "unit_demo", tab="unit")
    flow = CodeFlow(client, rp)
    tokens = flow.tokens(scope="openid profile unit realname")
    id_token = jwt.decode(tokens["id_token"], _keys(app)).claims
    assert id_token["user_type"] == "unit"
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    u = unit(demo=True)
    assert (info["user_type"], info["unit_name"], info["uscc"], info["unit_type"], info["handler_name"]) == (
        "unit", u.unit_name, u.uscc, u.unit_type, "李娜")
    assert info["handler_id_type"] == "resident_id"
    assert info["handler_id_number"] != HANDLER_ID and info["handler_id_number"].endswith(HANDLER_ID[-4:])
    assert "id_number" not in info  # a unit has no personal document of its own
    without = flow.tokens(scope="openid unit")
    info = client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + without["access_token"]}).get_json()
    assert "handler_id_number" not in info and info["uscc"] == u.uscc


def test_a_persons_claims_name_their_type(signed_in_flow, app):
    tokens = signed_in_flow.tokens(scope="openid unit")
    id_token = jwt.decode(tokens["id_token"], _keys(app)).claims
    assert id_token["user_type"] == "personal" and "uscc" not in id_token


def test_discovery_lists_the_unit_scope_and_claims(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "unit" in meta["scopes_supported"]
    assert {"user_type", "unit_name", "uscc"} <= set(meta["claims_supported"])


def test_allowed_user_types_by_the_cli(app, runner, make_client):
    rp = make_client(client_id="units-portal")
    result = runner.invoke(args=["clients", "update", rp.client_id, "--user-types", "both", "--reason", "单位用户上线"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(db.select(Client).filter_by(client_id=rp.client_id)).allowed_user_types == "both"
    added = runner.invoke(args=["clients", "add", "--name", "单位网上办事", "--redirect-uri",
                                "https://units.example.test/cb", "--user-types", "unit", "--json"])
    assert added.exit_code == 0, added.output


def _keys(app):
    return KeySet.import_key_set(app.test_client().get("/.well-known/jwks.json").get_json())
