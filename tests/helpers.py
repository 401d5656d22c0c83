"""Small helpers for driving the real app over HTTP in tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

CAPTCHA = "TEST"  # TestingConfig pins every captcha answer to this


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"action": attrs.get("action"), "fields": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._current["fields"].setdefault(attrs["name"], attrs.get("value") or "")


def form_fields(html: str | bytes, index: int = 0) -> dict[str, str]:
    """Every named <input> of the index-th form with its current value (hidden fields included)."""
    parser = _FormParser()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return dict(parser.forms[index]["fields"])


def csrf_token(html: str | bytes) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text)
    assert match, "no csrf_token on the page"
    return match.group(1)


def submit_form(client, url: str, data: dict, *, index: int = 0, follow_redirects: bool = False):
    """GET the page, take its hidden fields (CSRF, captcha id), overlay ``data``, POST it."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    fields = form_fields(page.data, index)
    fields.update(data)
    return client.post(url, data=fields, follow_redirects=follow_redirects)


def login(client, username: str, password: str, *, follow_redirects: bool = False):
    return submit_form(
        client, "/login", {"username": username, "password": password, "captcha": CAPTCHA},
        follow_redirects=follow_redirects,
    )


def query_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# -- second factors ------------------------------------------------------------------------------
#: what the tests know of each staff member's authenticator app and recovery codes
TOTP_SECRETS: dict[str, str] = {}
RECOVERY_CODES: dict[str, list[str]] = {}
_LAST_STEP: dict[str, int] = {}


def totp_code(username: str, at: float | None = None) -> str:
    """The authenticator app of ``username``: a code for a time-step it has not shown before (the
    platform accepts each step once), within the step either side of now that it allows."""
    import time

    import pyotp

    totp = pyotp.TOTP(TOTP_SECRETS[username])
    now_step = int((time.time() if at is None else at) // totp.interval)
    step = max(now_step, _LAST_STEP.get(username, -1) + 1)
    _LAST_STEP[username] = step
    return totp.generate_otp(step)


def enrolment_url(app, username: str) -> str:
    """The link `idp admin create` prints, as a path."""
    from idp.extensions import db
    from idp.models import User
    from idp.services.accounts.second_factors import enrolment_token

    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(username=username))
        return f"/mfa/enrol/{enrolment_token(user)}"


def enrol_totp(client, app, username: str):
    """Enrol an authenticator app for a staff member who has just given their password (or is
    signed in): open the enrolment link, scan the secret, answer a code, keep the recovery codes.
    Returns the answer to the code (a redirect to the recovery codes)."""
    opened = client.get(enrolment_url(app, username))
    assert opened.status_code == 302 and opened.headers["Location"] == "/mfa/setup", opened.data.decode()[:300]
    page = client.get("/mfa/setup")
    assert page.status_code == 200, page.data.decode()[:300]
    TOTP_SECRETS[username] = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.data.decode()).group(1)
    _LAST_STEP.pop(username, None)
    fields = form_fields(page.data, 0)
    fields.update(code=totp_code(username))
    answer = client.post("/mfa/setup", data=fields)
    assert answer.status_code == 302 and answer.headers["Location"] == "/mfa/recovery-codes", answer.data.decode()[:500]
    shown = client.get("/mfa/recovery-codes").data.decode()
    RECOVERY_CODES[username] = re.findall(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", shown)
    return answer


def answer_second_factor(client, username: str, *, method: str = "totp", code: str | None = None):
    page = client.get("/mfa/verify")
    assert page.status_code == 200, page.status_code
    token = csrf_token(page.data)
    if code is None:
        code = totp_code(username) if method == "totp" else RECOVERY_CODES[username].pop()
    return client.post("/mfa/verify", data={"csrf_token": token, "method": method, "code": code})


def login_with_second_factor(client, app, username: str, password: str):
    """Log in the way a person does: the password, then — for staff — the second factor, enrolled
    first through the enrolment link if there is none yet.  Returns the last redirect."""
    response = login(client, username, password)
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location == "/mfa/setup":
        return enrol_totp(client, app, username)
    if response.status_code == 302 and location == "/mfa/verify":
        return answer_second_factor(client, username)
    return response
