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
