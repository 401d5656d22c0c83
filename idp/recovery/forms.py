"""The forms of the recovery flows, one per step.  Checks beyond "was anything typed" live in the
identity rules and the recovery services, so every page says the same thing for the same fault."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import TelInput

from ..auth.forms import CaptchaMixin
from ..form_rules import answer_length, card_digits, name_length, password_length, phone_digits, sms_code_length
from ..services.verification.banks import BANKS
from ..services.identity.rules import ID_TYPES, USER_TYPES
from ..services.identity.units import UNIT_ID_TYPES

_ID_NUMBER = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "maxlength": 32}
_PHONE = {"autocomplete": "tel-national", "inputmode": "numeric", "maxlength": 20}
_CODE = {"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6}


def _id_type_field() -> SelectField:
    # choices are checked by the identity rules (one message for a bad value, wherever it comes from)
    return SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in ID_TYPES.items()],
                       default="resident_id", validate_choice=False)


def _user_type_field(default: str) -> RadioField:
    return RadioField("用户类型", choices=[SelectChoice(k, v) for k, v in USER_TYPES.items()], default=default,
                      validate_choice=False)


def _id_number_field() -> StringField:
    return StringField("证件号", validators=[InputRequired("请输入证件号"), Length(max=32, message="证件号格式不正确")],
                       render_kw=_ID_NUMBER)


# -- 忘记用户名 --------------------------------------------------------------------------------------
class UsernameIdentityForm(CaptchaMixin, FlaskForm):
    name = StringField("姓名", validators=[InputRequired("请输入姓名"), name_length()],
                       render_kw={"autocomplete": "name", "spellcheck": "false"})
    user_type = _user_type_field("personal")
    id_type = _id_type_field()
    id_number = _id_number_field()
    submit = SubmitField("下一步")


class UnitUsernameIdentityForm(CaptchaMixin, FlaskForm):
    """忘记用户名 for 单位用户: the unit as registered, instead of a person."""

    user_type = _user_type_field("unit")
    unit_name = StringField("单位名称", validators=[InputRequired("请输入单位名称"), Length(max=100, message="请输入单位名称")],
                            render_kw={"autocomplete": "organization", "spellcheck": "false"})
    unit_id_type = SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in UNIT_ID_TYPES.items()],
                               default="uscc", validate_choice=False)
    uscc = StringField("统一社会信用代码", validators=[InputRequired("请输入统一社会信用代码"),
                                                Length(max=32, message="统一社会信用代码格式不正确，请核对（18位，含校验码）")],
                       render_kw={**_ID_NUMBER, "maxlength": 18})
    submit = SubmitField("下一步")


IDENTITY_FORMS: dict[str, type[FlaskForm]] = {"personal": UsernameIdentityForm, "unit": UnitUsernameIdentityForm}


class UsernameSmsForm(FlaskForm):
    sms_code = StringField("动态验证", validators=[sms_code_length()], render_kw=_CODE)
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    submit = SubmitField("下一步")


# -- 忘记密码 ----------------------------------------------------------------------------------------
class PasswordUsernameForm(CaptchaMixin, FlaskForm):
    username = StringField("用户名", validators=[InputRequired("请输入用户名"), Length(max=32, message="用户名不存在或格式不正确")],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    submit = SubmitField("下一步")


class MethodForm(FlaskForm):
    # set by the button pressed: <button name="method" value="id_sms|questions">
    method = HiddenField()


class IdPhoneForm(FlaskForm):
    # a unit account proves itself with its 统一社会信用代码 and its handler's phone: one list for
    # both, so the page is the same for every username
    id_type = SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in {**ID_TYPES, **UNIT_ID_TYPES}.items()],
                          default="resident_id", validate_choice=False)
    id_number = _id_number_field()
    phone = StringField("手机号码", widget=TelInput(), render_kw=_PHONE,
                        validators=[InputRequired("请输入手机号码"), phone_digits()])
    sms_code = StringField("动态验证", validators=[sms_code_length()], render_kw=_CODE)
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    submit = SubmitField("下一步")


class AnswersForm(FlaskForm):
    # labels are the account's questions, set by the page
    answer_1 = StringField("答案一", validators=[answer_length("答案不能超过{max}个字")], render_kw={"autocomplete": "off"})
    answer_2 = StringField("答案二", validators=[answer_length("答案不能超过{max}个字")], render_kw={"autocomplete": "off"})
    answer_3 = StringField("答案三", validators=[answer_length("答案不能超过{max}个字")], render_kw={"autocomplete": "off"})
    submit = SubmitField("下一步")


class ResetPasswordForm(CaptchaMixin, FlaskForm):
    new_password = PasswordField("新密码", validators=[InputRequired("请输入新密码"), password_length()],
                                 render_kw={"autocomplete": "new-password", "maxlength": 32})
    confirm_password = PasswordField("确认新密码", validators=[InputRequired("请再次输入新密码")],
                                     render_kw={"autocomplete": "new-password", "maxlength": 32})
    submit = SubmitField("下一步")


# -- 手机号已停用? -------------------------------------------------------------------------------------
class PhoneChangeForm(FlaskForm):
    bank_code = SelectField("银行", choices=[SelectChoice("", "请选择银行")] + [SelectChoice(k, v) for k, v in BANKS.items()],
                            validate_choice=False)
    card_number = StringField("银行账号", validators=[InputRequired("请输入银行账号"), card_digits()],
                              render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 32})
    phone = StringField("新手机号码", widget=TelInput(), render_kw=_PHONE,
                        validators=[InputRequired("请输入手机号码"), phone_digits()])
    sms_code = StringField("短信验证码", validators=[sms_code_length()], render_kw=_CODE)
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    submit = SubmitField("提交")
