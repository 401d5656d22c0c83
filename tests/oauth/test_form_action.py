"""CSP form-action: 'self', plus the registered redirect URI of the request where a page's form
leads on to a relying system (a submission's redirects are checked against it by browsers)."""

from __future__ import annotations

import re

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from .conftest import CodeFlow


def form_action(response) -> str:
    csp = response.headers["Content-Security-Policy"]
    return re.search(r"form-action ([^;]*)", csp).group(1)


def test_pages_post_only_to_the_platform_by_default(client):
    assert form_action(client.get("/login")) == "'self'"
    assert form_action(client.get("/register/", follow_redirects=True)) == "'self'"


def test_consent_page_may_lead_to_the_clients_redirect_uri(client, make_client, user):
    rp = make_client(first_party=False)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    page = CodeFlow(client, rp).authorize()
    assert page.status_code == 200 and "<form" in page.data.decode()
    assert form_action(page) == "'self' https://rp.example.test"


def test_login_for_an_authorization_request_may_lead_back_to_the_client(client, rp):
    response = CodeFlow(client, rp).authorize()
    assert response.headers["Location"].startswith("/login")
    assert form_action(client.get("/login")) == "'self' https://rp.example.test"
    # another system's URIs are not allowed along with it
    assert "evil" not in client.get("/login").headers["Content-Security-Policy"]


def test_an_unregistered_redirect_uri_is_not_allowed(client, rp):
    CodeFlow(client, rp).authorize(redirect_uri="https://evil.example.test/cb")
    assert form_action(client.get("/login")) == "'self'"


def test_logout_confirmation_leads_only_where_the_logout_will_go(signed_in_flow):
    # without id_token_hint the post-logout URI is not followed (anyone could have sent the
    # user here), so the confirmation's form leads back to the platform only
    page = signed_in_flow.client.get("/oauth/logout", query_string={
        "client_id": signed_in_flow.rp.client_id, "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert page.status_code == 200 and "<form" in page.data.decode()
    assert form_action(page) == "'self'"
    done = signed_in_flow.client.post(page.request.full_path, data={
        "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.data.decode()).group(1)})
    assert "Location" not in done.headers
