"""A real HTTP server around the app (a thread with werkzeug's server) for browser tests and
for interop tests that use real HTTP clients, plus the Debian Chromium launcher."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    app: Flask
    url: str


@contextmanager
def serve(app: Flask, port: int):
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def outbox_sms(url: str, phone: str, pattern: str = r"验证码为(\d{6})") -> str:
    """What ``pattern`` finds in the newest SMS to ``phone`` in the development outbox of the
    platform serving at ``url`` (by default: the code)."""
    import requests

    outbox = requests.get(f"{url}/dev/sms-outbox.json", params={"phone": phone}, timeout=10).json()
    return re.search(pattern, outbox["messages"][0]["text"]).group(1)


def require_browser() -> None:
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        if os.environ.get("IDP_REQUIRE_BROWSER"):
            pytest.fail("Debian chromium is required (apt-get install -y chromium)")
        pytest.skip("Debian chromium not installed (apt-get install -y chromium)")


@contextmanager
def chromium_page(width: int = 390, height: int = 844):
    """A fresh headless Chromium page (Playwright driving Debian's browser, never a download),
    by default at a phone's width."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()
