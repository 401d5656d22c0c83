"""The rules of a unit (单位): its document type and number, its name, its type, its legal
representative.  The unified social credit code (统一社会信用代码, GB 32100) is public data: it is
checked with its check character (python-stdnum's ``cn.uscc``) and kept in clear."""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.cn import uscc as gb32100
from stdnum.exceptions import ValidationError

from ...errors import InvalidField
from .rules import normalise_name

# the list leaves room for 组织机构代码 (GB 11714) of old records: a code added here must come
# with its own check and a registry that answers for it
UNIT_ID_TYPES: dict[str, str] = {"uscc": "统一社会信用代码"}

UNIT_TYPES: dict[str, str] = {
    "enterprise": "企业",
    "organ": "机关",
    "institution": "事业单位",
    "social_group": "社会团体",
    "private_non_enterprise": "民办非企业单位",
    "individual_business": "个体工商户",
    "other": "其他",
}

UNIT_NAME_MAX = 100


class UnitIdTypeInvalid(InvalidField):
    message = "请选择证件类型"
    field = "unit_id_type"


class UsccInvalid(InvalidField):
    message = "统一社会信用代码格式不正确，请核对（18位，含校验码）"
    field = "uscc"


class UnitNameInvalid(InvalidField):
    message = "请输入单位名称"
    field = "unit_name"


class UnitTypeInvalid(InvalidField):
    message = "请选择单位类型"
    field = "unit_type"


class LegalRepInvalid(InvalidField):
    message = "请输入法定代表人（负责人）姓名"
    field = "legal_rep_name"


class UsccTaken(InvalidField):
    """The same words as for a person's document (the page points to 忘记用户名)."""

    message = "证件已被使用"
    field = "uscc"


@dataclass(frozen=True)
class UnitInfo:
    unit_name: str
    unit_id_type: str
    uscc: str
    unit_type: str
    legal_rep_name: str

    def __repr__(self) -> str:  # the representative's name is personal data
        return f"<UnitInfo {self.unit_id_type} {self.uscc}>"


def check_uscc(unit_id_type: str | None, number: str | None) -> str:
    if unit_id_type not in UNIT_ID_TYPES:
        raise UnitIdTypeInvalid()
    try:
        return gb32100.validate((number or "").strip().upper())
    except ValidationError:
        raise UsccInvalid() from None


def check_unit_info(unit_name: str | None, unit_id_type: str | None, uscc: str | None, unit_type: str | None,
                    legal_rep_name: str | None) -> UnitInfo:
    name = normalise_name(unit_name or "")
    if not name or len(name) > UNIT_NAME_MAX:
        raise UnitNameInvalid()
    code = check_uscc(unit_id_type, uscc)
    if unit_type not in UNIT_TYPES:
        raise UnitTypeInvalid()
    representative = normalise_name(legal_rep_name or "")
    if not representative or len(representative) > 50:
        raise LegalRepInvalid()
    return UnitInfo(name, unit_id_type or "", code, unit_type or "", representative)
