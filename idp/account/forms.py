from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import TelInput

from ..auth.forms import CaptchaMixin
from ..form_rules import answer_length, card_digits, name_length, password_length, phone_digits, sms_code_length
from ..register.units.forms import HandlerFields
from ..services.accounts.security import SECURITY_QUESTIONS
from ..services.identity.units import UNIT_NAME_MAX
from ..services.verification.banks import BANKS


class PasswordChangeForm(CaptchaMixin, FlaskForm):
    current_password = PasswordField("当前密码", validators=[InputRequired("请输入当前密码")],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("新密码", validators=[InputRequired("请输入新密码"), password_length()],
                                 render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField("确认新密码", validators=[InputRequired("请再次输入新密码")],
                                     render_kw={"autocomplete": "new-password"})
    submit = SubmitField("提交")


_CHOICES = [SelectChoice("", "请选择密保问题")] + [SelectChoice(k, v) for k, v in SECURITY_QUESTIONS.items()]


class SecurityQuestionsForm(FlaskForm):
    current_password = PasswordField("当前密码", validators=[InputRequired("请输入当前密码")],
                                     render_kw={"autocomplete": "current-password"})
    question_1 = SelectField("密保问题一", choices=_CHOICES, validators=[InputRequired("请选择密保问题")])
    answer_1 = StringField("答案一", validators=[InputRequired("请填写答案"), answer_length()])
    question_2 = SelectField("密保问题二", choices=_CHOICES, validators=[InputRequired("请选择密保问题")])
    answer_2 = StringField("答案二", validators=[InputRequired("请填写答案"), answer_length()])
    question_3 = SelectField("密保问题三", choices=_CHOICES, validators=[InputRequired("请选择密保问题")])
    answer_3 = StringField("答案三", validators=[InputRequired("请填写答案"), answer_length()])
    submit = SubmitField("保存")


class RevokeSessionForm(FlaskForm):
    sid = HiddenField(validators=[InputRequired()])
    submit = SubmitField("下线")


class RevokeConsentForm(FlaskForm):
    client_id = HiddenField(validators=[InputRequired()])
    submit = SubmitField("撤销授权")


# -- 变更用户信息 (views in account/edit.py) ---------------------------------------------------------
class ProfileEditForm(FlaskForm):
    name = StringField("姓名", validators=[InputRequired("请输入姓名"), name_length()],
                       render_kw={"autocomplete": "name", "spellcheck": "false"})
    bank_code = SelectField("银行", choices=[SelectChoice("", "请选择银行")] + [SelectChoice(k, v) for k, v in BANKS.items()],
                            validate_choice=False)
    card_number = StringField("银行账号", validators=[card_digits()],
                              render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 32})
    phone = StringField("手机号码", widget=TelInput(), validators=[phone_digits()],
                        render_kw={"autocomplete": "tel-national", "inputmode": "numeric", "maxlength": 20})
    submit = SubmitField("提交")


class ProfileSmsForm(FlaskForm):
    sms_code = StringField("短信验证码", validators=[sms_code_length()],
                           render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6})
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    submit = SubmitField("提交")


# -- 变更用户信息 of a unit account (views in account/edit.py) -----------------------------------------
class UnitHandlerForm(HandlerFields, FlaskForm):
    """变更经办人: the handler as at registration, checked at the bank again."""

    submit = SubmitField("下一步")


class UnitNameForm(FlaskForm):
    """变更单位名称: the name (and representative) as the registry now holds them."""

    unit_name = StringField("单位名称", validators=[InputRequired("请输入单位名称"),
                                                Length(max=UNIT_NAME_MAX, message="单位名称过长")],
                            render_kw={"autocomplete": "organization", "maxlength": UNIT_NAME_MAX})
    legal_rep_name = StringField("法定代表人（负责人）姓名",
                                 validators=[InputRequired("请输入法定代表人（负责人）姓名"), name_length()],
                                 render_kw={"spellcheck": "false"})
    submit = SubmitField("提交")
