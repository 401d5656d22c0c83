"""The exam service's own pages: 修改密码 through single sign-on, 考生信息 without technical
text, and 注册指南 / 常见问题 with the service's contacts (EXAM_CONTACTS)."""

from __future__ import annotations

from .conftest import Browser, make_exam_app, sign_in


def test_candidate_page_offers_password_change_and_hides_protocol_details(exam, citizen):
    browser = Browser()
    html = sign_in(browser, exam, citizen["username"]).text
    assert f'<a class="button" href="{exam.issuer}/account/password">修改密码</a>' in html
    assert f'<a class="button" href="{exam.issuer}/account/">用户信息维护</a>' in html
    for technical in ("授权范围", "openid", "realname", "（sub）", citizen["sub"], "urn:"):
        assert technical not in html, technical
    # single sign-on: the platform's 修改密码 page opens without a new login
    page = browser.get(f"{exam.issuer}/account/password")
    assert page.url == f"{exam.issuer}/account/password"
    assert "当前密码" in page.text and "确认新密码" in page.text and "用户登录" not in page.text


def test_password_change_without_a_platform_session_asks_for_the_login_first(exam):
    page = Browser().get(f"{exam.issuer}/account/password")
    assert page.url == f"{exam.issuer}/login" and "用户登录" in page.text


def test_the_guide_answers_the_candidates_questions_in_the_manuals_words(exam):
    page = Browser().get(f"{exam.exam.url}/guide")
    assert page.status_code == 200
    html = page.text
    assert "注册需要什么条件？" in html
    assert "需持有一张有效的银行借记卡或深圳金融社保卡，且该卡在银行端已预留手机号码" in html
    banks = ("建设银行", "工商银行", "中国银行", "农业银行", "招商银行", "平安银行", "深圳农村商业银行", "邮储银行",
             "交通银行", "中信银行", "光大银行", "民生银行")
    assert all(f"<li>{bank}</li>" in html for bank in banks)
    assert "任一借记卡（非信用卡）" in html and "信用卡不能用于实名认证" in html
    assert "姓名中的生僻字处理方式需与银行留存信息保持一致" in html
    assert "请凭相关证明先到银行申请修改" in html  # changing the name
    assert "修改手机号码" in html and "金融社保自助终端" in html
    assert "点击“手机号已停用？”，进入更换手机号页面" in html
    assert 'href="/forgot-username"' in html and 'href="/forgot-password"' in html
    assert "<li>联系电话：(0755)12333，(0755)88100099</li>" in html
    assert "ksykwb@szhrss.gov.cn" in html
    # every page leads to it
    assert f'href="/guide"' in Browser().get(exam.exam.url + "/").text


def test_the_contacts_are_a_setting(tmp_path, live_server):
    app = make_exam_app(tmp_path, issuer=live_server.url, base_url="http://127.0.0.1:5999", client_id="x",
                        client_secret="y", CONTACTS="人事考试咨询：0755-80000000\n邮箱：exam@example.gov.cn")
    html = app.test_client().get("/guide").data.decode()
    assert "<li>人事考试咨询：0755-80000000</li><li>邮箱：exam@example.gov.cn</li>" in html
    assert "<br>人事考试咨询：0755-80000000<br>邮箱：exam@example.gov.cn</footer>" in html
    assert "88100099" not in html
