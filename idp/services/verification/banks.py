"""The 12 banks whose debit cards (and Shenzhen financial social-security cards) can verify a
citizen.  Codes are ours and are what the bank verification API carries."""

from __future__ import annotations

BANKS: dict[str, str] = {
    "CCB": "建设银行",
    "ICBC": "工商银行",
    "BOC": "中国银行",
    "ABC": "农业银行",
    "CMB": "招商银行",
    "PAB": "平安银行",
    "SRCB": "深圳农村商业银行",
    "PSBC": "邮储银行",
    "BOCOM": "交通银行",
    "CITIC": "中信银行",
    "CEB": "光大银行",
    "CMBC": "民生银行",
}


def bank_name(code: str) -> str:
    return BANKS.get(code, code)
