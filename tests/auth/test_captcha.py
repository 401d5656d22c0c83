"""The captcha: 看不清？换一张 with and without JavaScript, an alphabet without look-alikes, and
语音验证码 reading the same challenge aloud."""

from __future__ import annotations

import re
import wave
from io import BytesIO

import pytest

from idp.config import ConfigError, load_config
from idp.extensions import redis_store
from idp.services.verification import captcha

from ..conftest import make_app
from ..helpers import form_fields

# groups that look alike in the image, or sound alike read by their English names: at most one of each
LOOK_ALIKES = ["0ODQ", "1IL7T", "2Z", "5S", "8B", "6G", "UV", "BCDEGPTVZ", "AJK", "MN", "FSX", "6X", "IY"]


def _captcha_links(html: str) -> tuple[str, str]:
    refresh = re.search(r'<a href="([^"]+)" class="captcha-refresh" data-refresh="/captcha/new">看不清？换一张</a>', html)
    audio = re.search(r'<a href="([^"]+)" class="captcha-audio" type="audio/wav">语音验证码</a>', html)
    assert refresh and audio, html
    return refresh.group(1), audio.group(1)


@pytest.mark.parametrize("path", ["/login", "/register/login-info", "/recovery/username", "/recovery/password"])
def test_every_captcha_offers_a_new_one_and_audio_without_javascript(client, path):
    page = client.get(path, follow_redirects=True)
    html = page.data.decode()
    captcha_id = form_fields(page.data)["captcha_id"]
    refresh, audio = _captcha_links(html)
    assert audio == f"/captcha/{captcha_id}.wav"
    # the link reloads the page: a new challenge
    again = client.get(refresh, follow_redirects=True)
    assert form_fields(again.data)["captcha_id"] != captcha_id


def test_the_json_route_gives_a_new_image_and_its_audio(client):
    data = client.get("/captcha/new").get_json()
    assert data["image"] == f"/captcha/{data['captcha_id']}.png"
    assert data["audio"] == f"/captcha/{data['captcha_id']}.wav"


def test_the_audio_reads_the_same_challenge_as_a_wav(client, app):
    captcha_id = form_fields(client.get("/login").data)["captcha_id"]
    response = client.get(f"/captcha/{captcha_id}.wav")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Cache-Control"] == "no-store"
    with wave.open(BytesIO(response.data)) as audio:
        assert audio.getnchannels() == 1 and audio.getframerate() == 8000
        assert audio.getnframes() / audio.getframerate() > 2  # four characters spoken
    assert client.get("/captcha/unknown.wav").status_code == 404
    # listening does not spend the challenge: the typed answer still counts once
    with app.app_context():
        assert captcha.check_captcha(captcha_id, app.config["CAPTCHA_FIXED"])
        assert not captcha.check_captcha(captcha_id, app.config["CAPTCHA_FIXED"])


def test_the_audio_is_rate_limited_like_the_image(keys_dir):
    app = make_app(keys_dir, CAPTCHA_IP_LIMIT="3 per minute")
    client = app.test_client()
    with app.app_context():
        captcha_id = captcha.issue_captcha()
    statuses = [client.get(f"/captcha/{captcha_id}.wav").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_alphabet_has_no_look_alikes_and_is_a_setting(keys_dir):
    app = make_app(keys_dir, CAPTCHA_FIXED="")
    with app.app_context():
        answers = {redis_store.get("captcha:" + captcha.issue_captcha()).decode() for _ in range(200)}
        used = set("".join(answers))
        assert used == set(app.config["CAPTCHA_ALPHABET"])
        assert all(len(used & set(group)) <= 1 for group in LOOK_ALIKES)
        assert all(len(a) == app.config["CAPTCHA_LENGTH"] for a in answers)
    narrow = make_app(keys_dir, CAPTCHA_FIXED="", CAPTCHA_ALPHABET="34679")
    with narrow.app_context():
        assert set(redis_store.get("captcha:" + captcha.issue_captcha()).decode()) <= set("34679")


def test_production_refuses_an_alphabet_the_audio_cannot_read(monkeypatch):
    for name, value in (("IDP_DATABASE_URL", "postgresql+psycopg://idp@db/idp"), ("IDP_REDIS_URL", "redis://cache"),
                        ("IDP_ISSUER", "https://id.example.gov.cn"), ("IDP_SECRET_KEY", "x" * 40),
                        ("IDP_BANK_URL", "https://bank-verify.example.gov.cn"), ("IDP_SMS_BACKEND", "http"),
                        ("IDP_BANK_SECRET", "agreed-with-the-bank-platform-" + "z" * 16), ("IDP_PII_KEY", "33" * 32),
                        ("IDP_REGISTRY_URL", "https://registry-verify.example.gov.cn"),
                        ("IDP_REGISTRY_SECRET", "agreed-with-the-registry-" + "r" * 16)):
        monkeypatch.setenv(name, value)
    load_config("production")
    monkeypatch.setenv("IDP_CAPTCHA_ALPHABET", "abcdefghjk")
    with pytest.raises(ConfigError, match="IDP_CAPTCHA_ALPHABET"):
        load_config("production")


def test_the_image_needs_no_session_and_stays_rate_limited(keys_dir):
    app = make_app(keys_dir, CAPTCHA_IP_LIMIT="3 per minute")
    client = app.test_client()
    page = client.get("/login")
    assert page.headers.get("Set-Cookie")  # the login page keeps its server-side session
    captcha_id = form_fields(page.data)["captcha_id"]
    answers = [client.get(f"/captcha/{captcha_id}.png") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].mimetype == "image/png"
    assert not any(a.headers.get("Set-Cookie") for a in answers)  # no session loaded, none saved
    assert answers[3].headers["Retry-After"] == "60"
    # the challenge is still spent by the form that names it, once
    with app.app_context():
        assert captcha.check_captcha(captcha_id, app.config["CAPTCHA_FIXED"])
        assert not captcha.check_captcha(captcha_id, app.config["CAPTCHA_FIXED"])
