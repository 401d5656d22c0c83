"""The forms of 单位用户注册's own steps (填写登录信息 is the personal wizard's form)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import DateInput, TelInput

from ...form_rules import card_digits, name_length, phone_digits, sms_code_length
from ...services.identity.rules import GENDERS, ID_TYPES
from ...services.identity.units import UNIT_ID_TYPES, UNIT_NAME_MAX, UNIT_TYPES
from ...services.verification.banks import BANKS

_CODE = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "maxlength": 18}


class UnitInfoForm(FlaskForm):
    unit_name = StringField("单位名称", validators=[InputRequired("请输入单位名称"),
                                                Length(max=UNIT_NAME_MAX, message="单位名称过长")],
                            render_kw={"autocomplete": "organization", "maxlength": UNIT_NAME_MAX})
    # choices are checked by the unit rules (one message wherever a bad value comes from)
    unit_id_type = SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in UNIT_ID_TYPES.items()],
                               default="uscc", validate_choice=False)
    uscc = StringField("证件号", validators=[InputRequired("请输入统一社会信用代码")], render_kw=_CODE)
    unit_type = SelectField("单位类型", choices=[SelectChoice("", "请选择单位类型")]
                            + [SelectChoice(k, v) for k, v in UNIT_TYPES.items()], validate_choice=False)
    legal_rep_name = StringField("法定代表人（负责人）姓名",
                                 validators=[InputRequired("请输入法定代表人（负责人）姓名"), name_length()],
                                 render_kw={"spellcheck": "false"})
    submit = SubmitField("下一步")


class HandlerFields:
    """The handler as the bank knows them (every field is needed for its four-element check): at
    registration and again at 变更经办人."""

    name = StringField("经办人姓名", validators=[InputRequired("请输入姓名"), name_length()],
                       render_kw={"autocomplete": "name", "spellcheck": "false"})
    id_type = SelectField("证件类型", choices=[SelectChoice(k, v) for k, v in ID_TYPES.items()], default="resident_id",
                          validate_choice=False)
    id_number = StringField("证件号", validators=[InputRequired("请输入证件号"), Length(max=32, message="证件号格式不正确")],
                            render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                       "maxlength": 32})
    bank_code = SelectField("银行", choices=[SelectChoice("", "请选择银行")]
                            + [SelectChoice(k, v) for k, v in BANKS.items()], validate_choice=False)
    card_number = StringField("银行账号", validators=[InputRequired("请输入银行账号"), card_digits()],
                              render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 32})
    phone = StringField("手机号码", widget=TelInput(), validators=[InputRequired("请输入手机号码"), phone_digits()],
                        render_kw={"autocomplete": "tel-national", "inputmode": "numeric", "maxlength": 20})


class HandlerForm(HandlerFields, FlaskForm):
    """What 个人用户注册 asks at 填写身份信息 and 填写验证信息, on one page for the handler."""

    gender = RadioField("性别", choices=[SelectChoice(k, v) for k, v in GENDERS.items()], validate_choice=False)
    birthdate = StringField("出生日期", widget=DateInput(), render_kw={"autocomplete": "off", "min": "1900-01-01"})
    sms_code = StringField("短信验证码", validators=[sms_code_length()],
                           render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6})
    # separate consent (PIPL Art. 29), as at 填写验证信息: the card is the handler's sensitive data
    consent = BooleanField("我已阅读《个人信息保护告知》，同意平台将银行卡号仅用于银行实名核验")
    send_sms = SubmitField("发送短信验证", render_kw={"formnovalidate": True})
    back = SubmitField("上一步", render_kw={"formnovalidate": True})
    submit = SubmitField("下一步")
