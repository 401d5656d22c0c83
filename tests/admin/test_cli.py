"""Every console action from the command line, through the same services, audited as cli:<user>."""

from __future__ import annotations

import csv
import io
import json

from idp.extensions import db
from idp.models import Client, User, UserStatus
from idp.services.admin.client_secrets import verify_client_secret

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from .conftest import audit_events


def _ok(result):
    assert result.exit_code == 0, result.output
    return result.stdout  # what a pipe (`| jq`) gets; log lines go to stderr


def _client(app, client_id):
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        db.session.expunge(client)
        return client


def test_clients_list_show_update(app, runner, rp):
    assert "exam-service" in _ok(runner.invoke(args=["clients", "list"]))
    listed = json.loads(_ok(runner.invoke(args=["clients", "list", "--json", "--status", "enabled"])))
    assert [c["client_id"] for c in listed] == ["exam-service"]
    shown = json.loads(_ok(runner.invoke(args=["clients", "show", "exam-service"])))
    assert shown["redirect_uris"] == ["https://exam.example.test/cb"] and shown["has_secret"]
    assert "secret_digest" not in json.dumps(shown)

    out = _ok(runner.invoke(args=["clients", "update", "exam-service", "--scope", "openid profile",
                                  "--redirect-uri", "https://exam.example.test/cb2", "--first-party",
                                  "--access-token-lifetime", "120", "--reason", "收回实名权限"]))
    assert "updated exam-service: redirect_uris, scope, first_party, access_token_lifetime" in out
    client = _client(app, "exam-service")
    assert client.scope == "openid profile" and client.first_party and client.access_token_lifetime == 120
    assert client.redirect_uris == ["https://exam.example.test/cb2"]
    [event] = audit_events(app, "client.updated")
    assert event.actor.startswith("cli:") and event.details["reason"] == "收回实名权限"

    bad = runner.invoke(args=["clients", "update", "exam-service", "--redirect-uri", "http://exam.example.test/",
                              "--reason", "测试"])
    assert bad.exit_code != 0 and "回调地址须为 https 地址" in bad.output
    missing = runner.invoke(args=["clients", "update", "exam-service", "--name", "x"])
    assert missing.exit_code != 0 and "--reason" in missing.output
    assert "nothing changed" in _ok(runner.invoke(args=["clients", "update", "exam-service", "--reason", "无变化"]))


def test_clients_disable_enable_rotate(app, runner, rp):
    out = _ok(runner.invoke(args=["clients", "disable", "exam-service", "--reason", "停止服务"]))
    assert "disabled exam-service" in out and not _client(app, "exam-service").enabled
    again = runner.invoke(args=["clients", "disable", "exam-service", "--reason", "停止服务"])
    assert again.exit_code != 0 and "该应用系统已停用" in again.output
    _ok(runner.invoke(args=["clients", "enable", "exam-service", "--reason", "恢复服务"]))
    assert _client(app, "exam-service").enabled

    out = _ok(runner.invoke(args=["clients", "rotate-secret", "exam-service", "--overlap", "24h", "--reason", "定期轮换"]))
    new = out.split("client_secret: ")[1].split()[0]
    client = _client(app, "exam-service")
    with app.app_context():
        assert verify_client_secret(client, new) and verify_client_secret(client, rp[1])  # overlap
    _ok(runner.invoke(args=["clients", "rotate-secret", "exam-service", "--reason", "泄露"]))
    client = _client(app, "exam-service")
    with app.app_context():
        assert not verify_client_secret(client, new) and not verify_client_secret(client, rp[1])
    assert runner.invoke(args=["clients", "rotate-secret", "exam-service", "--overlap", "31d",
                               "--reason", "太长"]).exit_code != 0
    assert [e.details["overlap_seconds"] for e in audit_events(app, "client.secret_rotated")] == [86400, 0]


def test_users_search_show_and_actions(app, runner, citizen):
    out = _ok(runner.invoke(args=["users", "search", "--by", "id-number", "440303198512124562"]))
    assert "zsfeng01" in out and "张**" in out and "张三丰" not in out
    shown = json.loads(_ok(runner.invoke(args=["users", "show", "zsfeng01"])))
    assert shown["profile"]["id_number"] == "440***********4562" and shown["profile"]["phone"] == "138****8123"
    assert "440303198512124562" not in json.dumps(shown, ensure_ascii=False)

    browser = app.test_client()
    assert login(browser, "zsfeng01", DEFAULT_PASSWORD).status_code == 302
    out = _ok(runner.invoke(args=["users", "lock", "zsfeng01", "--reason", "账户异常"]))
    assert "locked zsfeng01 (sessions ended: 1" in out
    assert browser.get("/account/").status_code == 302
    _ok(runner.invoke(args=["users", "unlock", citizen.sub, "--reason", "已核实"]))  # by subject too
    _ok(runner.invoke(args=["users", "disable", "zsfeng01", "--reason", "注销"]))
    with app.app_context():
        assert db.session.scalar(db.select(User).filter_by(sub=citizen.sub)).status == UserStatus.DISABLED
    _ok(runner.invoke(args=["users", "enable", "zsfeng01", "--reason", "恢复"]))
    assert login(browser, "zsfeng01", DEFAULT_PASSWORD).status_code == 302
    assert "logged out zsfeng01 (sessions ended: 1" in _ok(runner.invoke(args=["users", "logout", "zsfeng01",
                                                                             "--reason", "丢失手机"]))
    events = [e.event for e in audit_events(app, subject=citizen.sub) if e.actor.startswith("cli:")]
    assert events == ["admin.user_viewed", "account.locked", "account.unlocked", "account.disabled",
                      "account.enabled", "account.logged_out"]
    refused = runner.invoke(args=["users", "lock", "nobody", "--reason", "测试"])
    assert refused.exit_code != 0 and "用户不存在" in refused.output
    no_reason = runner.invoke(args=["users", "lock", "zsfeng01", "--reason", "x"])
    assert no_reason.exit_code != 0 and "请填写操作原因" in no_reason.output


def test_roles(app, runner, citizen):
    _ok(runner.invoke(args=["admin", "grant", "zsfeng01", "--role", "operator", "--reason", "运营岗位"]))
    assert "zsfeng01" in _ok(runner.invoke(args=["admin", "list"]))
    _ok(runner.invoke(args=["admin", "revoke", "zsfeng01", "--reason", "调岗"]))
    assert "zsfeng01" not in _ok(runner.invoke(args=["admin", "list"]))
    assert len(audit_events(app, "account.role_changed")) == 2


def test_audit_list_and_export(app, runner, citizen, tmp_path):
    out = _ok(runner.invoke(args=["audit", "list", "--event", "account.created"]))
    assert "account.created" in out and f"subject={citizen.sub}" in out
    target = tmp_path / "audit.csv"
    _ok(runner.invoke(args=["audit", "export", "--subject", citizen.sub, "--output", str(target)]))
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8").lstrip("\ufeff"))))
    assert rows[0][1] == "事件" and rows[1][1] == "account.created"
    bad = runner.invoke(args=["audit", "list", "--since", "yesterday"])
    assert bad.exit_code != 0 and "时间格式应为" in bad.output


def test_clients_add_and_update_take_contacts(app, runner, rp):
    out = _ok(runner.invoke(args=["clients", "add", "--name", "职称评审系统", "--client-id", "title-review",
                                  "--redirect-uri", "https://title.example.test/cb",
                                  "--contacts", "职称评审办公室 电话：0755-88123456", "--contacts", "邮箱：zc@example.gov.cn"]))
    assert "client_id:     title-review" in out
    assert _client(app, "title-review").contacts == "职称评审办公室 电话：0755-88123456\n邮箱：zc@example.gov.cn"
    out = _ok(runner.invoke(args=["clients", "update", "exam-service", "--contacts", "深圳市考试院 电话：0755-88100099",
                                  "--reason", "登记联系方式"]))
    assert "updated exam-service: contacts" in out
    assert _client(app, "exam-service").contacts == "深圳市考试院 电话：0755-88100099"
    _ok(runner.invoke(args=["clients", "update", "exam-service", "--contacts", "", "--reason", "撤下联系方式"]))
    assert _client(app, "exam-service").contacts is None
    shown = json.loads(_ok(runner.invoke(args=["clients", "show", "exam-service"])))
    assert shown["contacts"] is None


def test_clients_add_and_update_require_dpop(app, runner, rp):
    _ok(runner.invoke(args=["clients", "add", "--name", "考生服务移动端", "--client-id", "exam-app", "--public",
                            "--redirect-uri", "https://exam.example.test/app-cb", "--require-dpop"]))
    assert _client(app, "exam-app").dpop_bound_access_tokens is True
    out = _ok(runner.invoke(args=["clients", "update", "exam-app", "--no-require-dpop", "--reason", "暂停绑定"]))
    assert "updated exam-app: dpop_bound_access_tokens" in out
    assert _client(app, "exam-app").dpop_bound_access_tokens is False
    shown = json.loads(_ok(runner.invoke(args=["clients", "show", "exam-app"])))
    assert shown["dpop_bound_access_tokens"] is False
