"""The server-side session under parallel requests of one browser: a request that did not change
the session never writes it back (it only slides its expiry), so a slow request that loaded it
early cannot undo what a newer request wrote meanwhile, nor revive the id a login replaced."""

from __future__ import annotations

import threading

import pytest
from flask import session

from idp.extensions import redis_store

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, login, submit_form


@pytest.fixture
def slow_request(app, client):
    """A request of this browser that loads the session, then waits (a large image, a 404 the
    browser fetched with the page) until the test lets it finish."""
    entered, release, answers = threading.Event(), threading.Event(), []

    def slow_image():
        session.get("csrf_token")  # reads the session, as every page does
        entered.set()
        release.wait(10)
        return "", 404

    app.add_url_rule("/images/slow.png", "slow_image", slow_image)

    def start() -> None:
        thread = threading.Thread(target=lambda: answers.append(client.get("/images/slow.png")))
        thread.start()
        assert entered.wait(10), "the slow request never started"

        def finish():
            release.set()
            thread.join(10)
            assert answers and answers[0].status_code == 404

        start.finish = finish

    yield start
    release.set()


def _ttl(client) -> int:
    with client.application.app_context():
        return redis_store.ttl("session:" + client.get_cookie("idp_session").value)


def test_a_slow_request_does_not_bring_back_the_session_a_login_replaced(client, user, slow_request):
    client.get("/login")  # a stored session (CSRF token)
    slow_request()
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302  # a new session id
    slow_request.finish()
    assert client.get("/account/").status_code == 200  # still signed in


def test_a_slow_request_does_not_undo_a_newer_write(client, user, slow_request):
    client.get("/recovery/password")
    slow_request()
    started = submit_form(client, "/recovery/password", {"username": user.username, "captcha": CAPTCHA,
                                                         "submit": "1"})
    assert started.headers["Location"] == "/recovery/password/method"  # the flow's id, in the session
    slow_request.finish()
    assert client.get("/recovery/password/method").status_code == 200


def test_an_unchanged_session_slides_its_expiry_without_a_rewrite(app, logged_in):
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    sid = logged_in.get_cookie("idp_session").value
    with app.app_context():
        redis_store.expire("session:" + sid, 60)
        stored = redis_store.get("session:" + sid)
    page = logged_in.get("/account/")
    assert page.status_code == 200
    assert lifetime - 5 <= _ttl(logged_in) <= lifetime
    assert "idp_session=" + sid in page.headers["Set-Cookie"] and "Expires=" in page.headers["Set-Cookie"]
    with app.app_context():
        assert redis_store.get("session:" + sid) == stored


def test_the_favicon_leaves_the_session_alone(app, logged_in):
    sid = logged_in.get_cookie("idp_session").value
    with app.app_context():
        redis_store.expire("session:" + sid, 60)
    answer = logged_in.get("/favicon.ico")
    assert "Set-Cookie" not in answer.headers
    assert _ttl(logged_in) <= 60
