"""The administration console (/admin): 应用系统管理, 用户综合管理, 审计日志.

Views parse a form, call a service (the same functions the CLI calls), render.  Every route
carries ``@requires(permission)``; the blueprint refuses one that does not.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, flash, g, redirect, render_template, request, stream_with_context, url_for

from ..errors import InvalidField, UserError
from ..extensions import db
from ..oauth.claims import SCOPE_LABELS
from ..services.admin import users as admin_users, clients
from ..services.audit import log as audit_log
from ..services.admin.staff import ROLES, actor_of
from ..services.identity.rules import USER_TYPES
from .access import fail_closed, requires
from .forms import (
    AuditFilterForm,
    ClientForm,
    ClientImportForm,
    ClientSearchForm,
    ReasonForm,
    RoleForm,
    RotateSecretForm,
    UserSearchForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
fail_closed(bp)


@bp.app_template_filter("role_label")
def role_label(role: str | None) -> str:
    return ROLES.get(role or "", "普通用户")


@bp.app_template_filter("audit_time")
def audit_time(value: datetime) -> str:
    """Beijing time to the second: the audit log is read to reconstruct sequences."""
    return value.astimezone(audit_log.BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _actor():
    return actor_of(g.user)


# service field names that a form spells differently
_FORM_FIELDS = {"scope": "scopes"}


def _show_error(form, exc: UserError) -> str | None:
    """Put a service's error beside its field when the form has it; else return it for the top."""
    field = getattr(form, _FORM_FIELDS.get(exc.field, exc.field), None) if exc.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message]
        return None
    return exc.message


@bp.get("/")
@requires("console")
def index():
    actor = _actor()
    stats: dict[str, dict] = {}
    if actor.may("clients.read"):
        stats["clients"] = clients.count_by_state()
    if actor.may("users.read"):
        stats["users"] = admin_users.count_by_status()
    if actor.may("audit.read"):
        stats["events"] = audit_log.outcome_counts(timedelta(days=1))
    return render_template("admin/index.html", stats=stats)


# -- 应用系统管理 ----------------------------------------------------------------------------------
@bp.get("/clients")
@requires("clients.read")
def client_list():
    form = ClientSearchForm(request.args)
    rows = clients.list_clients(form.q.data, status=form.status.data or None)
    return render_template("admin/clients/list.html", form=form, rows=rows, types=clients.CLIENT_TYPES)


@bp.route("/clients/new", methods=["GET", "POST"])
@requires("clients.write")
def client_new():
    form = ClientForm()
    error = None
    if form.validate_on_submit():
        try:
            client, secret = clients.create_client(form.to_spec(), actor=_actor(), reason=form.reason.data)
        except UserError as exc:
            error = _show_error(form, exc)
        else:
            return render_template("admin/clients/secret.html", client=client, secret=secret, created=True)
    submitted = form.is_submitted()
    return render_template("admin/clients/form.html", form=form, error=error, client=None), 400 if submitted else 200


def _client_page(client, *, status: int = 200, error: str | None = None, **forms):
    forms.setdefault("toggle_form", ReasonForm(prefix="toggle", formdata=None))
    forms.setdefault("rotate_form", RotateSecretForm(prefix="rotate", formdata=None))
    return render_template(
        "admin/clients/show.html", client=client, error=error, types=clients.CLIENT_TYPES,
        grant_labels=clients.GRANT_LABELS, auth_labels=clients.AUTH_METHOD_LABELS, scope_labels=SCOPE_LABELS,
        min_acr_labels=clients.MIN_ACR_LABELS, now=datetime.now(timezone.utc), **forms,
    ), status


@bp.get("/clients/<client_id>")
@requires("clients.read")
def client_show(client_id: str):
    return _client_page(clients.get_client(client_id))


@bp.get("/clients/<client_id>/export.json")
@requires("clients.read")
def client_export(client_id: str):
    document = clients.export_client(client_id, actor=_actor())
    return Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="client-{client_id}.json"'})


@bp.route("/clients/import", methods=["GET", "POST"])
@requires("clients.write")
def client_import():
    form = ClientImportForm()
    error = None
    if form.validate_on_submit():
        try:
            try:
                document = json.loads(form.document.data)
            except ValueError:
                raise clients.ImportInvalid("导入内容不是有效的 JSON") from None
            client, secret, created = clients.import_client(document, actor=_actor(), reason=form.reason.data)
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
        else:
            if secret:
                return render_template("admin/clients/secret.html", client=client, secret=secret, created=created)
            flash("已导入：" + ("新增应用系统" if created else "已更新应用系统"))
            return redirect(url_for("admin.client_show", client_id=client.client_id))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/clients/import.html", form=form, error=error), status


@bp.route("/clients/<client_id>/edit", methods=["GET", "POST"])
@requires("clients.write")
def client_edit(client_id: str):
    client = clients.get_client(client_id)
    form = ClientForm()
    error = None
    if not form.is_submitted():
        form.fill_from(clients.spec_of(client))
    elif form.validate():
        try:
            change = clients.update_client(client.client_id, form.to_spec(), actor=_actor(), reason=form.reason.data)
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
        else:
            if change.secret:
                return render_template("admin/clients/secret.html", client=change.client, secret=change.secret,
                                       created=False)
            if change.changed:
                message = "应用系统已保存"
                if change.revoked_tokens:
                    message += f"；已撤销 {change.revoked_tokens} 个含被移除授权范围的令牌"
                flash(message)
            else:
                flash("未做任何修改")
            return redirect(url_for("admin.client_show", client_id=client.client_id))
    form.client_id.data = client.client_id  # never changes
    status = 400 if form.is_submitted() else 200
    return render_template("admin/clients/form.html", form=form, error=error, client=client), status


@bp.post("/clients/<client_id>/<any(disable, enable):action>")
@requires("clients.write")
def client_toggle(client_id: str, action: str):
    client = clients.get_client(client_id)
    form = ReasonForm(prefix="toggle")
    if form.validate_on_submit():
        try:
            if action == "disable":
                revoked = clients.disable_client(client.client_id, actor=_actor(), reason=form.reason.data)
                flash(f"应用系统已停用，已撤销 {revoked} 个令牌")
            else:
                clients.enable_client(client.client_id, actor=_actor(), reason=form.reason.data)
                flash("应用系统已启用")
            return redirect(url_for("admin.client_show", client_id=client.client_id))
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
            return _client_page(client, status=exc.status if error else 400, error=error, toggle_form=form)
    return _client_page(client, status=400, toggle_form=form)


@bp.post("/clients/<client_id>/secret")
@requires("clients.write", step_up=True)
def client_rotate_secret(client_id: str):
    client = clients.get_client(client_id)
    form = RotateSecretForm(prefix="rotate")
    if form.validate_on_submit():
        try:
            secret = clients.rotate_client_secret(client.client_id, overlap=form.overlap_delta(), actor=_actor(),
                                                  reason=form.reason.data)
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
            return _client_page(client, status=exc.status if error else 400, error=error, rotate_form=form)
        return render_template("admin/clients/secret.html", client=client, secret=secret, created=False)
    return _client_page(client, status=400, rotate_form=form)


# -- 用户综合管理 ----------------------------------------------------------------------------------
@bp.route("/users", methods=["GET", "POST"])
@requires("users.read")
def user_search():
    # a search is a POST: a document number or phone typed here never lands in a URL, so never
    # in an access log, the browser's history or a Referer; a GET only shows the empty form
    form = UserSearchForm(request.form if request.method == "POST" else None)
    result = error = None
    failed = False
    if request.method == "POST":
        try:
            result = admin_users.search_users(form.by.data, form.q.data, user_type=form.user_type.data,
                                              actor=_actor())
        except UserError as exc:
            error = _show_error(form, exc)
            failed = True
    return render_template("admin/users/search.html", form=form, result=result, error=error,
                           statuses=admin_users.STATUS_LABELS, user_types=USER_TYPES), 400 if failed else 200


USER_ACTIONS = {
    "lock": (admin_users.lock_account, "锁定账户", "账户已锁定"),
    "unlock": (admin_users.unlock_account, "解除锁定", "账户已解锁"),
    "logout": (admin_users.force_logout, "强制下线", "已强制下线"),
    "disable": (admin_users.disable_account, "停用账户", "账户已停用"),
    "enable": (admin_users.enable_account, "启用账户", "账户已启用"),
}


def _user_page(sub: str, *, status: int = 200, error: str | None = None, forms: dict | None = None):
    overview = admin_users.user_overview(sub, actor=_actor())
    action_forms = {name: ReasonForm(prefix=name, formdata=None) for name in USER_ACTIONS}
    action_forms.update(forms or {})
    role_form = (forms or {}).get("role") or RoleForm(prefix="role", formdata=None, role=overview.role or "")
    return render_template(
        "admin/users/show.html", user=overview, error=error, statuses=admin_users.STATUS_LABELS,
        actions={name: (label, action_forms[name]) for name, (_, label, _) in USER_ACTIONS.items()},
        role_form=role_form, scope_labels=SCOPE_LABELS, outcomes=audit_log.OUTCOMES,
    ), status


@bp.get("/users/<sub>")
@requires("users.read")
def user_show(sub: str):
    return _user_page(sub)


@bp.post("/users/<sub>/<any(lock, unlock, logout, disable, enable):action>")
@requires("users.write", step_up=lambda action, **_: action == "disable")
def user_action(sub: str, action: str):
    service, _, done = USER_ACTIONS[action]
    form = ReasonForm(prefix=action)
    admin_users.get_user(sub)  # 404 before anything else
    if form.validate_on_submit():
        try:
            result = service(sub, actor=_actor(), reason=form.reason.data)
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
            return _user_page(sub, status=exc.status if error else 400, error=error, forms={action: form})
        extra = []
        if result.sessions_ended:
            extra.append(f"结束 {result.sessions_ended} 个登录会话")
        if result.tokens_revoked:
            extra.append(f"撤销 {result.tokens_revoked} 个令牌")
        flash(done + ("，" + "，".join(extra) if extra else ""))
        return redirect(url_for("admin.user_show", sub=sub))
    return _user_page(sub, status=400, forms={action: form})


@bp.post("/users/<sub>/role")
@requires("roles.write", step_up=True)
def user_role(sub: str):
    form = RoleForm(prefix="role")
    admin_users.get_user(sub)
    if form.validate_on_submit():
        try:
            admin_users.set_role(sub, form.role.data or None, actor=_actor(), reason=form.reason.data)
        except UserError as exc:
            db.session.rollback()
            error = _show_error(form, exc)
            return _user_page(sub, status=exc.status if error else 400, error=error, forms={"role": form})
        flash("角色已修改")
        return redirect(url_for("admin.user_show", sub=sub))
    return _user_page(sub, status=400, forms={"role": form})


# -- 审计日志 -------------------------------------------------------------------------------------
def _audit_query(form: AuditFilterForm) -> audit_log.AuditQuery:
    outcome = form.outcome.data or None
    if outcome and outcome not in audit_log.OUTCOMES:
        raise InvalidField("请选择结果", field="outcome")
    return audit_log.AuditQuery(
        since=audit_log.parse_time(form.since.data, "since"),
        until=audit_log.parse_time(form.until.data, "until", end=True),
        actor=(form.actor.data or "").strip() or None,
        subject=(form.subject.data or "").strip() or None,
        event=(form.event.data or "").strip() or None,
        outcome=outcome,
    )


def _filter_args(form: AuditFilterForm) -> dict[str, str]:
    return {name: getattr(form, name).data for name in ("since", "until", "actor", "subject", "event", "outcome")
            if getattr(form, name).data}


@bp.get("/audit")
@requires("audit.read")
def audit_events():
    form = AuditFilterForm(request.args)
    page = error = None
    try:
        query = _audit_query(form)
        page = audit_log.find_events(query, page=request.args.get("page", 1, type=int), actor=_actor())
    except UserError as exc:
        error = _show_error(form, exc)
    return render_template(
        "admin/audit/list.html", form=form, page=page, error=error, filter_args=_filter_args(form),
        event_types=audit_log.event_types(), outcomes=audit_log.OUTCOMES,
    ), 400 if page is None else 200


@bp.get("/audit/export.csv")
@requires("audit.read", step_up=True)
def audit_export():
    form = AuditFilterForm(request.args)
    try:
        query = _audit_query(form)
        lines = audit_log.export_csv(query, actor=_actor())
    except UserError as exc:
        error = _show_error(form, exc)
        return render_template(
            "admin/audit/list.html", form=form, page=None, error=error, filter_args=_filter_args(form),
            event_types=audit_log.event_types(), outcomes=audit_log.OUTCOMES,
        ), 400
    stamp = datetime.now(audit_log.BEIJING).strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
