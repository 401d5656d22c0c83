from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from ..auth.forms import CaptchaMixin


class DownloadRecentForm(FlaskForm):
    """A login recent enough: one press."""

    submit = SubmitField("下载我的数据")


class DownloadReauthForm(CaptchaMixin, FlaskForm):
    password = PasswordField("登录密码", validators=[InputRequired("请输入登录密码"), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("验证并下载")


class CloseAccountForm(FlaskForm):
    password = PasswordField("登录密码", validators=[Length(max=128)], render_kw={"autocomplete": "current-password"})
    sms_code = StringField("短信验证码", validators=[Length(max=6, message="短信验证码为6位数字")],
                           render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6})
    understood = BooleanField("我已了解：注销后账号不可恢复，个人信息将被删除，各应用系统的登录将全部退出")
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    submit = SubmitField("确认注销")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        # required only for 确认注销 (发送短信验证 posts the same form empty)
        for field, message in ((self.password, "请输入登录密码"), (self.sms_code, "请输入短信验证码")):
            if not (field.data or "").strip():
                field.errors = list(field.errors) + [message]
                ok = False
        if not self.understood.data:
            self.understood.errors = list(self.understood.errors) + ["请确认您已了解注销的后果"]
            ok = False
        return ok
