from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import InputRequired, Length


class CaptchaMixin:
    captcha_id = HiddenField()
    captcha = StringField("验证码", validators=[InputRequired("请输入验证码"), Length(max=8)],
                          render_kw={"autocomplete": "off", "inputmode": "text", "autocapitalize": "characters"})


class LoginForm(CaptchaMixin, FlaskForm):
    username = StringField("用户名", validators=[InputRequired("请输入用户名"), Length(max=32)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField("密码", validators=[InputRequired("请输入密码"), Length(max=128)],
                             render_kw={"autocomplete": "current-password"})
    # the tab: 个人用户登录 or 单位用户登录 (anything else is the personal tab)
    user_type = HiddenField(default="personal")
    submit = SubmitField("登录")


class LogoutForm(FlaskForm):
    submit = SubmitField("退出")
