"""The three forms of the registration wizard.  Field checks beyond "was anything typed" live in
the identity rules and registration services, so the CLI and these pages say the same thing."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import DateInput, TelInput

from ..auth.forms import CaptchaMixin
from ..form_rules import card_digits, name_length, password_length, phone_digits, sms_code_length, username_length
from ..services.verification.banks import BANKS
from ..services.identity.rules import GENDERS, ID_TYPES

_USERNAME = {"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false", "maxlength": 20}


class LoginInfoForm(CaptchaMixin, FlaskForm):
    username = StringField("用户名", validators=[InputRequired("请输入用户名"), username_length()],
                           render_kw=_USERNAME)
    password = PasswordField("密码", validators=[password_length()],
                             render_kw={"autocomplete": "new-password", "maxlength": 32})
    confirm = PasswordField("确认密码", validators=[password_length()],
                            render_kw={"autocomplete": "new-password", "maxlength": 32})
    submit = SubmitField("下一步")


class IdentityForm(FlaskForm):
    name = StringField("姓名", validators=[InputRequired("请输入姓名"), name_length()],
                       render_kw={"autocomplete": "name", "spellcheck": "false"})
    # choices are checked by the identity rules (one message for a bad value, wherever it comes from)
    id_type = SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in ID_TYPES.items()], default="resident_id", validate_choice=False)
    id_number = StringField("证件号", validators=[InputRequired("请输入证件号"), Length(max=32, message="证件号格式不正确")],
                            render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                       "maxlength": 32})
    gender = RadioField("性别", choices=[SelectChoice(k, v) for k, v in GENDERS.items()], validate_choice=False)
    birthdate = StringField("出生日期", widget=DateInput(), render_kw={"autocomplete": "bday", "min": "1900-01-01"})
    back = SubmitField("上一步", render_kw={"formnovalidate": True})
    submit = SubmitField("下一步")


class VerificationForm(FlaskForm):
    bank_code = SelectField("银行", choices=[SelectChoice("", "请选择银行")] + [SelectChoice(k, v) for k, v in BANKS.items()], validate_choice=False)
    card_number = StringField("银行账号", validators=[InputRequired("请输入银行账号"), card_digits()],
                              render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 32})
    phone = StringField("手机号码", widget=TelInput(), validators=[InputRequired("请输入手机号码"), phone_digits()],
                        render_kw={"autocomplete": "tel-national", "inputmode": "numeric", "maxlength": 20})
    sms_code = StringField("短信验证码", validators=[sms_code_length()],
                           render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6})
    # separate consent (PIPL Art. 29): a card number is sensitive personal information
    consent = BooleanField("我已阅读《个人信息保护告知》，同意平台将银行卡号仅用于银行实名核验")
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    back = SubmitField("上一步", render_kw={"formnovalidate": True})
    submit = SubmitField("下一步")
