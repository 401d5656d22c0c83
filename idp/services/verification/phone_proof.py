"""Proving a phone inside a flow, and the decoy code of a flow whose details match no account.

A flow remembers which phone it asked a code for and which phone a code proved; ``prove`` is the
one rule every flow applies: a phone proven once in the flow stays proven (the citizen may go
back and fix another field without a new code), another phone needs its own code, and an empty
code is asked for before anything is checked.

``DecoyCode`` answers 发送短信验证 when the details typed match no account (忘记用户名): nothing is
delivered, but a code record is kept exactly like a real one, under a stand-in number derived
from what was typed (so it behaves like one phone across flows, as a registered phone does): the
resend gate, the daily cap, the tries, the expiry and every message are ``SmsCode``'s own, and a
stranger cannot tell the two apart.
"""

from __future__ import annotations

import hashlib

from .sms import SmsCode, SmsCodeInvalid, SmsCodeNotRequested


class CodeMissing(SmsCodeInvalid):
    message = "请输入短信验证码"


def prove(sms: SmsCode, *, phone: str, code: str, requested: str | None, proven: str | None) -> None:
    """Raise unless ``phone`` is proven in this flow (``proven``) or ``code`` is the one sent to it
    (``requested`` is the phone the flow last asked a code for)."""
    if proven == phone:
        return
    if requested != phone:
        raise SmsCodeNotRequested()
    if not (code or "").strip():
        raise CodeMissing()
    sms.verify(phone, code)


class DecoyCode(SmsCode):
    """``SmsCode`` itself — resend gate, daily cap, tries, expiry, messages — with a record no code
    matches and no message delivered."""

    delivers = False

    @staticmethod
    def number_for(seed: str) -> str:
        """A stand-in number for ``seed`` (a keyed hash of the details typed): 16 digits, so never
        a real mobile."""
        return "0" + str(int(hashlib.sha256(f"decoy|{seed}".encode()).hexdigest(), 16))[:15]
