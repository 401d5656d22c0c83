from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import InputRequired, Length


class CodeForm(FlaskForm):
    """A code from the authenticator app (method=totp) or a recovery code (method=recovery)."""

    method = HiddenField(default="totp")
    code = StringField("验证码", validators=[InputRequired("请输入验证码"), Length(max=32)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField("验证")


class TotpEnrolForm(FlaskForm):
    label = StringField("名称（可选）", validators=[Length(max=64)], render_kw={"placeholder": "如：我的手机"})
    code = StringField("应用显示的6位验证码", validators=[InputRequired("请输入验证码"), Length(max=16)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})
    submit = SubmitField("完成绑定")


class ConfirmForm(FlaskForm):
    submit = SubmitField("确认")
