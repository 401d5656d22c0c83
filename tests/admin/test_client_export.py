"""A relying system's settings moved between environments as JSON (CLI)."""

from __future__ import annotations

import json

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Client
from idp.services.admin.clients import ClientSpec, create_client


def test_export_then_import_into_another_environment(app, runner, tmp_path, keys_dir):
    from ..conftest import make_app

    with app.app_context():
        client, secret = create_client(ClientSpec(
            name="税务系统", client_id="tax-system", redirect_uris=["https://tax.example.test/cb"],
            scope="openid profile", subject_type="pairwise", require_pushed_authorization_requests=True,
            contacts="电话：12366", frontchannel_logout_uri="https://tax.example.test/fc",
            frontchannel_logout_session_required=True, min_acr="urn:hrss:acr:mfa"))
    exported = runner.invoke(args=["clients", "export", "tax-system"])
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.stdout)  # stderr may hold a logging error of an earlier test's app
    assert secret not in exported.output and "secret" not in " ".join(document)
    assert document["subject_type"] == "pairwise" and document["sector_identifier"] == "tax.example.test"
    # the other environment: another database (here, under another client_id, as the test
    # database may be one PostgreSQL shared by both apps)
    document["client_id"] = "tax-system-prod"
    path = tmp_path / "tax.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")

    other = make_app(keys_dir)
    result = other.test_cli_runner().invoke(args=["clients", "import", str(path), "--reason", "从测试环境迁移"])
    assert result.exit_code == 0, result.output
    assert "created tax-system-prod" in result.output and "client_secret:" in result.output
    with other.app_context():
        row = db.session.scalar(select(Client).where(Client.client_id == "tax-system-prod"))
        assert (row.name, row.subject_type, row.require_pushed_authorization_requests) == ("税务系统", "pairwise", True)
        assert (row.frontchannel_logout_uri, row.frontchannel_logout_session_required, row.min_acr) == (
            "https://tax.example.test/fc", True, "urn:hrss:acr:mfa")

    # importing again updates; a changed document changes the registration
    document["name"] = "税务服务系统"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    again = other.test_cli_runner().invoke(args=["clients", "import", str(path), "--reason", "更新名称"])
    assert again.exit_code == 0 and "updated tax-system-prod" in again.output
    with other.app_context():
        assert db.session.scalar(select(Client.name).where(Client.client_id == "tax-system-prod")) == "税务服务系统"
        events = db.session.scalars(select(AuditEvent.event).where(AuditEvent.client_id == "tax-system-prod")).all()
        assert {"client.created", "client.updated"} <= set(events)
    with app.app_context():
        assert "client.exported" in db.session.scalars(select(AuditEvent.event)).all()


def test_import_refuses_what_the_form_would(runner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "hrss-idp-client/1", "client_id": "x-sys", "name": "坏",
                                "redirect_uris": ["http://evil.example.test/cb"]}), encoding="utf-8")
    result = runner.invoke(args=["clients", "import", str(path), "--reason", "测试导入"])
    assert result.exit_code != 0 and "https" in result.output
    path.write_text(json.dumps({"format": "hrss-idp-client/1", "client_id": "x-sys", "name": "坏",
                                "client_secret": "s"}), encoding="utf-8")
    result = runner.invoke(args=["clients", "import", str(path), "--reason", "测试导入"])
    assert result.exit_code != 0 and "client_secret" in result.output


def test_console_exports_and_imports(app, admin):
    from .conftest import text_of

    created = admin.post("/admin/clients/new", {
        "name": "医保系统", "client_id": "health-sys", "client_type": "confidential",
        "redirect_uris": "https://a.health.example.test/cb\nhttps://b.health.example.test/cb",
        "scopes": ["openid", "profile"], "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic", "subject_type": "pairwise",
        "sector_identifier": "health.example.test", "require_pushed_authorization_requests": "y",
        "reason": "工单 OA-2026-077 新系统接入"})
    assert created.status_code == 200, text_of(created)[:400]
    assert "导出配置" in admin.get("/admin/clients/health-sys").data.decode()
    exported = admin.get("/admin/clients/health-sys/export.json")
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    document = exported.get_json()
    assert document["sector_identifier"] == "health.example.test"
    assert document["require_pushed_authorization_requests"] is True
    assert not any("secret" in key for key in document)

    document["name"] = "医疗保障系统"
    imported = admin.submit("/admin/clients/import", "/admin/clients/import",
                            {"document": json.dumps(document, ensure_ascii=False), "reason": "从测试环境迁移配置"})
    assert imported.status_code == 302, text_of(imported)[:400]
    with app.app_context():
        assert db.session.scalar(select(Client.name).where(Client.client_id == "health-sys")) == "医疗保障系统"

    document["redirect_uris"] = ["http://evil.example.test/cb"]
    refused = admin.submit("/admin/clients/import", "/admin/clients/import",
                           {"document": json.dumps(document), "reason": "从测试环境迁移配置"})
    assert refused.status_code == 400 and "https" in text_of(refused)
