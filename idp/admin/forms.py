"""Console forms.  Every action form carries a reason; the rules beyond "was anything typed" live
in the services (clients, admin_users, audit_log) so the CLI says the same thing."""

from __future__ import annotations

import json
from datetime import timedelta

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from ..errors import InvalidField
from ..services.admin.users import SEARCH_FIELDS
from ..services.identity.rules import USER_TYPES
from ..services.admin.staff import REASON_MAX, ROLES
from ..services.audit.log import OUTCOMES
from ..oauth.claims import SCOPE_LABELS
from ..services.admin.clients import MIN_ACR_LABELS, USER_TYPE_CHOICES
from ..services.admin.clients import AUTH_METHOD_LABELS, CLIENT_TYPES, GRANT_LABELS, SUPPORTED_SCOPES, ClientSpec, parse_jwks

_REASON_KW = {"rows": 2, "maxlength": REASON_MAX, "placeholder": "例如：工单号、申请人所在部门（不要填写证件号、手机号等个人信息）"}


class ReasonMixin:
    reason = TextAreaField("操作原因", validators=[InputRequired("请填写操作原因"), Length(max=REASON_MAX, message=f"操作原因不能超过{REASON_MAX}个字")],
                           render_kw=_REASON_KW)


class ReasonForm(ReasonMixin, FlaskForm):
    """One action with its reason (lock, unlock, force logout, disable, enable)."""

    submit = SubmitField("确定")


class CheckboxGroupField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _seconds(text: str | None, field: str, label: str) -> int | None:
    value = (text or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise InvalidField(f"{label}须为整数秒数", field=field)
    return int(value)


class ClientImportForm(ReasonMixin, FlaskForm):
    document = TextAreaField("导出的配置（JSON）", validators=[InputRequired("请粘贴导出的 JSON")],
                             render_kw={"rows": 10, "spellcheck": "false", "autocapitalize": "none"})
    submit = SubmitField("导入")


class ClientForm(ReasonMixin, FlaskForm):
    name = StringField("应用系统名称", validators=[InputRequired("请填写应用系统名称"), Length(max=100, message="应用系统名称不能超过100个字")])
    client_id = StringField("client_id", validators=[Length(max=64, message="client_id 不能超过64位")],
                            render_kw={"autocapitalize": "none", "spellcheck": "false"})
    description = TextAreaField("说明", validators=[Length(max=500, message="说明不能超过500个字")], render_kw={"rows": 2})
    contacts = TextAreaField("联系方式", render_kw={"rows": 3})
    allowed_user_types = SelectField("允许登录的用户类型", choices=[SelectChoice(k, v) for k, v in USER_TYPE_CHOICES.items()],
                                     default="personal", validate_choice=False)
    # choices are checked by the clients service: one message for a bad value, wherever it comes from
    client_type = SelectField("应用类型", choices=[SelectChoice(k, v) for k, v in CLIENT_TYPES.items()],
                              default="confidential", validate_choice=False)
    redirect_uris = TextAreaField("回调地址", render_kw={"rows": 3, "spellcheck": "false", "autocapitalize": "none"})
    post_logout_redirect_uris = TextAreaField("退出后回调地址", render_kw={"rows": 2, "spellcheck": "false", "autocapitalize": "none"})
    backchannel_logout_uri = StringField("后端登出通知地址", render_kw={"spellcheck": "false", "autocapitalize": "none", "inputmode": "url"})
    frontchannel_logout_uri = StringField("前端登出地址", render_kw={"spellcheck": "false", "autocapitalize": "none", "inputmode": "url"})
    frontchannel_logout_session_required = BooleanField("前端登出地址附带 iss 和 sid")
    min_acr = SelectField("最低认证级别", choices=[SelectChoice(k, v) for k, v in MIN_ACR_LABELS.items()],
                          default="", validate_choice=False)
    scopes = CheckboxGroupField("授权范围", choices=[SelectChoice(s, f"{s}：{SCOPE_LABELS.get(s, s)}") for s in SUPPORTED_SCOPES],
                                default=["openid", "profile"], validate_choice=False)
    grant_types = CheckboxGroupField("授权方式", choices=[SelectChoice(k, v) for k, v in GRANT_LABELS.items()],
                                     default=["authorization_code", "refresh_token"], validate_choice=False)
    token_endpoint_auth_method = SelectField("客户端认证方式", choices=[SelectChoice(k, v) for k, v in AUTH_METHOD_LABELS.items()],
                                             default="client_secret_basic", validate_choice=False)
    jwks = TextAreaField("公钥（JWKS）", render_kw={"rows": 3, "spellcheck": "false"})
    first_party = BooleanField("本局自有系统（用户登录时不再询问授权）")
    subject_type = SelectField("用户标识（sub）类型", choices=[SelectChoice("public", "public：各系统相同"),
                                                     SelectChoice("pairwise", "pairwise：按扇区各不相同")],
                               default="public", validate_choice=False)
    sector_identifier = StringField("扇区标识（主机名）", render_kw={"spellcheck": "false", "autocapitalize": "none"})
    require_pushed_authorization_requests = BooleanField("授权请求须先推送（PAR）")
    dpop_bound_access_tokens = BooleanField("令牌须绑定密钥（DPoP）")
    access_token_lifetime = StringField("访问令牌有效期（秒）", render_kw={"inputmode": "numeric"})
    refresh_token_lifetime = StringField("刷新令牌有效期（秒）", render_kw={"inputmode": "numeric"})
    submit = SubmitField("保存")

    def to_spec(self) -> ClientSpec:
        return ClientSpec(
            name=self.name.data or "",
            client_type=self.client_type.data or "",
            redirect_uris=_lines(self.redirect_uris.data),
            post_logout_redirect_uris=_lines(self.post_logout_redirect_uris.data),
            backchannel_logout_uri=(self.backchannel_logout_uri.data or "").strip() or None,
            scope=" ".join(self.scopes.data or []),
            grant_types=list(self.grant_types.data or []) or None,
            token_endpoint_auth_method=self.token_endpoint_auth_method.data or None,
            first_party=bool(self.first_party.data),
            client_id=(self.client_id.data or "").strip() or None,
            jwks=parse_jwks(self.jwks.data),
            access_token_lifetime=_seconds(self.access_token_lifetime.data, "access_token_lifetime", "访问令牌有效期"),
            refresh_token_lifetime=_seconds(self.refresh_token_lifetime.data, "refresh_token_lifetime", "刷新令牌有效期"),
            description=self.description.data,
            contacts=self.contacts.data,
            allowed_user_types=self.allowed_user_types.data or "personal",
            subject_type=self.subject_type.data or "public",
            sector_identifier=(self.sector_identifier.data or "").strip() or None,
            require_pushed_authorization_requests=bool(self.require_pushed_authorization_requests.data),
            frontchannel_logout_uri=(self.frontchannel_logout_uri.data or "").strip() or None,
            frontchannel_logout_session_required=bool(self.frontchannel_logout_session_required.data),
            min_acr=self.min_acr.data or None,
            dpop_bound_access_tokens=bool(self.dpop_bound_access_tokens.data),
        )

    def fill_from(self, spec: ClientSpec) -> None:
        self.name.data = spec.name
        self.client_id.data = spec.client_id
        self.description.data = spec.description or ""
        self.contacts.data = spec.contacts or ""
        self.allowed_user_types.data = spec.allowed_user_types
        self.client_type.data = spec.client_type
        self.redirect_uris.data = "\n".join(spec.redirect_uris)
        self.post_logout_redirect_uris.data = "\n".join(spec.post_logout_redirect_uris)
        self.backchannel_logout_uri.data = spec.backchannel_logout_uri or ""
        self.frontchannel_logout_uri.data = spec.frontchannel_logout_uri or ""
        self.frontchannel_logout_session_required.data = spec.frontchannel_logout_session_required
        self.min_acr.data = spec.min_acr or ""
        self.scopes.data = spec.scope.split()
        self.grant_types.data = list(spec.grant_types or [])
        self.token_endpoint_auth_method.data = spec.token_endpoint_auth_method
        self.jwks.data = json.dumps(spec.jwks, ensure_ascii=False, indent=2) if spec.jwks else ""
        self.first_party.data = spec.first_party
        self.subject_type.data = spec.subject_type
        self.sector_identifier.data = spec.sector_identifier or ""
        self.require_pushed_authorization_requests.data = spec.require_pushed_authorization_requests
        self.dpop_bound_access_tokens.data = spec.dpop_bound_access_tokens
        self.access_token_lifetime.data = str(spec.access_token_lifetime or "")
        self.refresh_token_lifetime.data = str(spec.refresh_token_lifetime or "")


SECRET_OVERLAPS: dict[str, tuple[str, timedelta]] = {
    "0": ("立即失效", timedelta(0)),
    "3600": ("保留1小时", timedelta(hours=1)),
    "86400": ("保留24小时", timedelta(days=1)),
    "604800": ("保留7天", timedelta(days=7)),
}


class RotateSecretForm(ReasonMixin, FlaskForm):
    overlap = SelectField("旧密钥", choices=[SelectChoice(k, label) for k, (label, _) in SECRET_OVERLAPS.items()],
                          default="86400", validate_choice=False)
    submit = SubmitField("生成新密钥")

    def overlap_delta(self) -> timedelta:
        try:
            return SECRET_OVERLAPS[self.overlap.data][1]
        except KeyError:
            raise InvalidField("请选择旧密钥的保留时间", field="overlap") from None


class ClientSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("名称或 client_id", render_kw={"type": "search"})
    status = SelectField("状态", choices=[SelectChoice("", "全部"), SelectChoice("enabled", "已启用"), SelectChoice("disabled", "已停用")],
                         validate_choice=False)
    submit = SubmitField("查询", render_kw={"name": ""})


class UserSearchForm(FlaskForm):
    by = SelectField("检索方式", choices=[SelectChoice(k, v) for k, v in SEARCH_FIELDS.items()], default="username",
                     validate_choice=False)
    q = StringField("检索内容", render_kw={"type": "search", "autocomplete": "off", "spellcheck": "false"})
    user_type = SelectField("用户类型", choices=[SelectChoice("", "全部")]
                            + [SelectChoice(k, v) for k, v in USER_TYPES.items()], default="", validate_choice=False)
    submit = SubmitField("查询", render_kw={"name": ""})


class RoleForm(ReasonMixin, FlaskForm):
    role = SelectField("角色", choices=[SelectChoice("", "无（普通用户）")] + [SelectChoice(k, v) for k, v in ROLES.items()],
                       validate_choice=False)
    submit = SubmitField("修改角色")


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    since = StringField("开始时间", render_kw={"type": "datetime-local", "placeholder": "YYYY-MM-DD HH:MM"})
    until = StringField("结束时间", render_kw={"type": "datetime-local", "placeholder": "YYYY-MM-DD HH:MM"})
    actor = StringField("操作者", render_kw={"autocapitalize": "none", "spellcheck": "false"})
    subject = StringField("对象（用户标识或 client_id）", render_kw={"autocapitalize": "none", "spellcheck": "false"})
    event = StringField("事件类型", render_kw={"list": "event-types", "autocapitalize": "none", "spellcheck": "false"})
    outcome = SelectField("结果", choices=[SelectChoice("", "全部")] + [SelectChoice(k, v) for k, v in OUTCOMES.items()],
                          validate_choice=False)
    submit = SubmitField("查询", render_kw={"name": ""})
