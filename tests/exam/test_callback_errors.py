"""Every way the login callback can go wrong ends on a clear Chinese page, never a stack trace,
and never with a local session."""

from __future__ import annotations

import threading
from urllib.parse import urlencode, urljoin

import pytest

from clients.exam.extensions import db as exam_db
from clients.exam.models import Candidate, CandidateLogin

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import LiveServer, free_port, serve
from .conftest import Browser, ExamStack, make_exam_app, query, sign_in
from .provider_double import DEFECTS, SUB, provider_double

STATE_MESSAGE = "登录请求已失效或无法确认来源，请返回考生服务系统重新登录。"
ID_TOKEN_MESSAGE = "统一用户平台返回的身份凭证校验失败，已拒绝登录。"


def assert_clear_error(response, message: str, status: int = 400) -> None:
    assert response.status_code == status, response.text[:500]
    assert message in response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert "返回考生服务系统登录页" in response.text


def assert_signed_out(browser: Browser, exam_url: str) -> None:
    assert browser.get(f"{exam_url}/candidate", follow=False).status_code == 302


def started_login(browser: Browser, exam: ExamStack) -> dict[str, str]:
    """Press 登录 and stop at the platform: the authorization request's parameters."""
    response = browser.get(f"{exam.exam.url}/login", follow=False)
    assert response.status_code == 302
    return query(response.headers["Location"])


def callback(browser: Browser, exam: ExamStack, **params):
    return browser.get(f"{exam.exam.url}/auth/callback?{urlencode(params)}")


# -- state -----------------------------------------------------------------------------------------
def test_state_mismatch_is_refused(exam):
    browser = Browser()
    started_login(browser, exam)
    response = callback(browser, exam, code="stolen-code", state="forged-state", iss=exam.issuer)
    assert_clear_error(response, STATE_MESSAGE)
    assert_signed_out(browser, exam.exam.url)


def test_callback_from_another_browser_is_refused(exam, citizen):
    """Code injection / login CSRF: a callback only completes in the browser that started it."""
    victim = Browser()
    login_page = victim.get(victim.get(f"{exam.exam.url}/login", follow=False).headers["Location"])
    resumed = victim.submit(login_page, {"username": citizen["username"], "password": DEFAULT_PASSWORD,
                                         "captcha": CAPTCHA}, follow=False)
    to_exam = victim.get(urljoin(exam.issuer, resumed.headers["Location"]), follow=False)
    callback_url = to_exam.headers["Location"]
    assert callback_url.startswith(f"{exam.exam.url}/auth/callback?code=")

    attacker = Browser()
    assert_clear_error(attacker.get(callback_url), STATE_MESSAGE)
    assert_signed_out(attacker, exam.exam.url)
    # the victim's own login is not disturbed by the attempt
    assert victim.get(callback_url).url == f"{exam.exam.url}/candidate"


def test_a_callback_is_good_once(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    used = next(h for h in browser.hops if "/auth/callback" in h)
    assert_clear_error(browser.get(used), STATE_MESSAGE)


def test_missing_state_is_refused(exam):
    browser = Browser()
    started_login(browser, exam)
    assert_clear_error(callback(browser, exam, code="x", iss=exam.issuer), STATE_MESSAGE)


# -- the platform answers with an error --------------------------------------------------------------
def test_access_denied_at_the_platform(exam_factory, citizen):
    exam = exam_factory(first_party=False)  # a system that needs the citizen's consent
    browser = Browser()
    login_page = browser.get(f"{exam.exam.url}/login")
    consent = browser.platform_login(login_page, citizen["username"])
    assert "授权确认" in consent.text
    denied = browser.submit(consent, {"decision": "deny"})
    assert "error=access_denied" in next(h for h in browser.hops if "/auth/callback" in h)
    assert_clear_error(denied, "您未同意授权，未能登录考生服务系统。")
    assert_signed_out(browser, exam.exam.url)
    with exam.exam.app.app_context():
        assert exam_db.session.query(Candidate).count() == 0


@pytest.mark.parametrize("error, message", [
    ("server_error", "统一用户平台暂时无法完成登录，请稍后再试。"),
    ("temporarily_unavailable", "统一用户平台暂时繁忙，请稍后再试。"),
    ("invalid_scope", "统一用户平台未能完成登录，请返回考生服务系统重新登录。"),
])
def test_error_response_from_the_platform(exam, error, message):
    browser = Browser()
    request = started_login(browser, exam)
    response = callback(browser, exam, error=error, error_description="<script>x</script>",
                        state=request["state"], iss=exam.issuer)
    assert_clear_error(response, message)
    assert "<script>x</script>" not in response.text
    # the state was spent on that answer: a code arriving later with it is refused
    late = callback(browser, exam, code="late-code", state=request["state"], iss=exam.issuer)
    assert_clear_error(late, STATE_MESSAGE)


# -- mix-up defence (RFC 9207) ----------------------------------------------------------------------
@pytest.mark.parametrize("iss", ["http://127.0.0.1:9", None])
def test_response_from_another_issuer_is_refused(exam, citizen, iss):
    browser = Browser()
    request = started_login(browser, exam)
    params = dict(code="some-code", state=request["state"])
    if iss:
        params["iss"] = iss
    response = callback(browser, exam, **params)
    assert_clear_error(response, "登录响应并非来自统一用户平台，已拒绝。")
    assert_signed_out(browser, exam.exam.url)


# -- the code exchange ------------------------------------------------------------------------------
def test_a_code_the_platform_does_not_know_is_refused(exam):
    browser = Browser()
    request = started_login(browser, exam)
    response = callback(browser, exam, code="made-up-code", state=request["state"], iss=exam.issuer)
    assert_clear_error(response, "登录凭证已失效或无法兑换，请返回考生服务系统重新登录。")
    assert_signed_out(browser, exam.exam.url)


def test_wrong_client_secret_is_refused_at_the_token_endpoint(live_server, tmp_path, citizen):
    from .conftest import register_exam_client

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client_id, _ = register_exam_client(live_server.app, base)
    app = make_exam_app(tmp_path, issuer=live_server.url, base_url=base, client_id=client_id,
                        client_secret="not-the-secret")
    with serve(app, port) as url:
        browser = Browser()
        page = browser.platform_login(browser.get(f"{url}/login"), citizen["username"])
        assert_clear_error(page, "登录凭证已失效或无法兑换")
        assert_signed_out(browser, url)


def test_platform_unreachable(tmp_path):
    port = free_port()
    app = make_exam_app(tmp_path, issuer=f"http://127.0.0.1:{free_port()}", base_url=f"http://127.0.0.1:{port}",
                        client_id="exam-service", client_secret="s", HTTP_TIMEOUT=2.0)
    with serve(app, port) as url:
        response = Browser().get(f"{url}/login")
        assert_clear_error(response, "统一用户平台暂时无法访问，请稍后再试。", status=502)


# -- the ID token (a provider double produces each defect) -------------------------------------------
@pytest.fixture
def double_stack(tmp_path):
    started = []

    def start(defect: str, **double_options) -> ExamStack:
        double_port, exam_port = free_port(), free_port()
        issuer, base = f"http://127.0.0.1:{double_port}", f"http://127.0.0.1:{exam_port}"
        double = provider_double(issuer, "exam-service", "double-secret", defect, **double_options)
        exam_app = make_exam_app(tmp_path, issuer=issuer, base_url=base, client_id="exam-service",
                                 client_secret="double-secret")
        for app, port in ((double, double_port), (exam_app, exam_port)):
            server = serve(app, port)
            server.__enter__()
            started.append(server)
        return ExamStack(provider=LiveServer(double, issuer), exam=LiveServer(exam_app, base),
                         client_id="exam-service", client_secret="double-secret")

    yield start
    stopping = [threading.Thread(target=server.__exit__, args=(None, None, None)) for server in started]
    for thread in stopping:  # each shutdown waits out a poll interval: wait for them together
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.mark.parametrize("defect", [d for d in DEFECTS if d != "none"])
def test_id_token_that_does_not_verify_is_refused(double_stack, defect):
    exam = double_stack(defect)
    browser = Browser()
    response = browser.get(f"{exam.exam.url}/login")
    assert "/auth/callback" in browser.hops[-1]
    assert_clear_error(response, ID_TOKEN_MESSAGE)
    assert_signed_out(browser, exam.exam.url)
    with exam.exam.app.app_context():
        assert exam_db.session.query(CandidateLogin).count() == 0
        assert exam_db.session.query(Candidate).count() == 0


def test_the_double_without_a_defect_signs_in(double_stack):
    """Control: the refusals above are caused by the defects, not by the double."""
    exam = double_stack("none")
    browser = Browser()
    page = browser.get(f"{exam.exam.url}/login")
    assert page.url == f"{exam.exam.url}/candidate"
    assert "替身用户" in page.text
    with exam.exam.app.app_context():
        assert exam_db.session.query(Candidate).one().sub == SUB


def test_register_falls_back_to_login_where_prompt_create_is_not_supported(double_stack):
    exam = double_stack("none", prompts=("none", "login", "consent"))
    browser = Browser()
    to_platform = browser.get(f"{exam.exam.url}/register", follow=False)
    assert to_platform.status_code == 302
    assert "prompt" not in query(to_platform.headers["Location"])  # its login page links to registration


def test_register_asks_for_prompt_create_where_supported(double_stack):
    exam = double_stack("none")
    to_platform = Browser().get(f"{exam.exam.url}/register", follow=False)
    assert query(to_platform.headers["Location"])["prompt"] == "create"
