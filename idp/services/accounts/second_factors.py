"""Second factors: TOTP (RFC 6238), WebAuthn credentials (passkeys, security keys), recovery codes,
and the signed single-use link that lets a new staff member enrol one.

- A TOTP code is accepted once: the time-step it matched is stored, and an update that only
  succeeds for a later step decides atomically (two parallel requests with one code: one wins).
  The secret is encrypted at rest with the personal-data cipher.
- WebAuthn goes through py_webauthn; the relying-party id is the issuer's host and the origin the
  issuer itself.  A credential's ``amr`` is ``hwk`` when it cannot leave its device and ``swk``
  when it is a synced passkey (RFC 8176).
- Recovery codes: ten (a setting), single use, stored as keyed hashes.
- Every answer, right or wrong, is taken from a per-account budget first (``MFA_ATTEMPT_LIMIT``).

``clock`` is this module's time source; tests replace it to drive TOTP through time.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pyotp
import segno
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...errors import UserError
from ...extensions import db, redis_store
from ...models import RecoveryCode, SecondFactor, User
from ..audit import events as audit
from ..identity import pii
from ..limits import KeyedLimit

clock = time.time  # replaced by tests (a TOTP test clock)

TOTP_FIELD = "totp_secret"  # associated data of the encrypted secret
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_ENROLMENT_SALT = "idp.second-factor-enrolment"
_ENROLMENT_SPENT = "mfa-enrolment-spent:"

KIND_LABELS = {"totp": "身份验证器应用（TOTP）", "webauthn": "通行密钥 / 安全密钥"}


class SecondFactorInvalid(UserError):
    message = "验证码错误或已使用，请重新输入"
    field = "code"


class PasskeyInvalid(UserError):
    message = "通行密钥验证未通过，请重试"


class TooManySecondFactorAttempts(UserError):
    message = "验证失败次数过多，请{window}后再试"
    status = 429


class EnrolmentLinkInvalid(UserError):
    message = "绑定链接无效、已过期或已使用，请联系管理员重新获取"
    status = 400


class EnrolmentNotAllowed(UserError):
    message = "管理人员首次绑定第二因素需使用管理员提供的绑定链接"
    status = 403


class LastStaffFactor(UserError):
    message = "管理人员至少需要保留一种第二因素"
    status = 409


class FactorNotFound(UserError):
    message = "该验证方式不存在"
    status = 404


ATTEMPTS = KeyedLimit("MFA_ATTEMPT_LIMIT", TooManySecondFactorAttempts, namespace="mfa-attempts")


# -- what an account has ----------------------------------------------------------------------------
def factors_of(user_id: int) -> list[SecondFactor]:
    return list(db.session.scalars(
        select(SecondFactor).where(SecondFactor.user_id == user_id).order_by(SecondFactor.id)
    ))


def has_factor(user_id: int) -> bool:
    return db.session.scalar(select(SecondFactor.id).where(SecondFactor.user_id == user_id).limit(1)) is not None


def is_staff(user: User) -> bool:
    return bool(user.role)


def needs_second_factor(user: User) -> bool:
    """At every login: staff (enrolled or not: then they enrol).  A citizen's factor is asked
    when a relying system requires it (acr_values), as a step-up."""
    return is_staff(user)


def recovery_codes_left(user_id: int) -> int:
    return db.session.scalar(
        select(db.func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    ) or 0


def _now() -> datetime:
    return datetime.fromtimestamp(clock(), timezone.utc)


# -- TOTP -------------------------------------------------------------------------------------------
def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str
    qr_data_uri: str  # an SVG image of the otpauth:// URI, for <img src>


def totp_setup(user: User, secret: str) -> TotpSetup:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=current_app.config["MFA_TOTP_ISSUER"])
    qr = segno.make(uri, error="m")
    return TotpSetup(secret=secret, uri=uri, qr_data_uri=qr.svg_data_uri(scale=4, border=2))


def _matching_step(secret: str, code: str) -> int | None:
    """The time-step whose code this is, within the allowed drift, or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(_now())
    drift = current_app.config["MFA_TOTP_DRIFT_STEPS"]
    for step in range(now_step - drift, now_step + drift + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def enrol_totp(user: User, secret: str, code: str, label: str | None = None) -> SecondFactor:
    """Keep a TOTP secret the user's app has shown ``code`` for (proving the app holds it)."""
    ATTEMPTS.take(user.id)
    step = _matching_step(secret, code or "")
    if step is None:
        audit.add("mfa.enrolment", "failure", actor=user.username, subject=user.sub, kind="totp")
        db.session.commit()
        raise SecondFactorInvalid()
    ATTEMPTS.reset(user.id)
    factor = SecondFactor(
        user_id=user.id, kind="totp", label=(label or "身份验证器应用")[:64],
        totp_secret_enc=pii.cipher().encrypt(TOTP_FIELD, secret), last_step=step, last_used_at=_now(),
    )
    db.session.add(factor)
    db.session.flush()
    audit.add("mfa.enrolled", actor=user.username, subject=user.sub, kind="totp",
              factor_id=factor.id)
    db.session.commit()
    return factor


def _verify_totp(user: User, code: str) -> SecondFactor | None:
    for factor in factors_of(user.id):
        if factor.kind != "totp" or factor.totp_secret_enc is None:
            continue
        step = _matching_step(pii.cipher().decrypt(TOTP_FIELD, factor.totp_secret_enc), code)
        if step is None:
            continue
        # the step is spent in the same statement that checks it: a replay (or a parallel
        # request with the same code) finds last_step already there and changes nothing
        result = db.session.execute(
            update(SecondFactor)
            .where(SecondFactor.id == factor.id,
                   (SecondFactor.last_step.is_(None)) | (SecondFactor.last_step < step))
            .values(last_step=step, last_used_at=_now())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if result.rowcount == 1:
            return factor
    return None


# -- recovery codes ---------------------------------------------------------------------------------
def _normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _code_hash(code: str) -> str:
    return pii.cipher().lookup_hash("recovery_code", _normalise_code(code))


def new_recovery_codes(user: User) -> list[str]:
    """A fresh set (the previous one stops working); shown once, stored as keyed hashes."""
    count = current_app.config["MFA_RECOVERY_CODES"]
    codes = []
    while len(codes) < count:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        if code not in codes:
            codes.append(code)
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_code_hash(c)) for c in codes)
    audit.add("mfa.recovery_codes_issued", actor=user.username, subject=user.sub, count=count)
    db.session.commit()
    return codes


def _use_recovery_code(user: User, code: str) -> bool:
    if len(_normalise_code(code)) != 10:
        return False
    result = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _code_hash(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=_now())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


# -- one entry point for a typed answer -------------------------------------------------------------
def verify_code(user: User, method: str, code: str, *, purpose: str) -> list[str]:
    """Check a TOTP code (``method="totp"``) or a recovery code; the amr it is worth, or an error.
    ``purpose`` (login, step_up, acr) goes into the audit event."""
    ATTEMPTS.take(user.id)
    if method == "recovery":
        ok = _use_recovery_code(user, code)
    else:
        method = "totp"
        ok = _verify_totp(user, code) is not None
    if not ok:
        audit.add("mfa.verified", "failure", actor=user.username, subject=user.sub, method=method,
                  purpose=purpose)
        db.session.commit()
        raise SecondFactorInvalid()
    ATTEMPTS.reset(user.id)
    details = {"method": method, "purpose": purpose}
    if method == "recovery":
        details["recovery_codes_left"] = recovery_codes_left(user.id)
    audit.add("mfa.verified", actor=user.username, subject=user.sub, **details)
    db.session.commit()
    return ["otp"]


# -- WebAuthn ---------------------------------------------------------------------------------------
def relying_party() -> tuple[str, str]:
    """(rp_id, origin): the issuer's host and the issuer's scheme://host[:port]."""
    parts = urlsplit(current_app.config["ISSUER"])
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _descriptors(user_id: int) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(f.credential_id))
            for f in factors_of(user_id) if f.kind == "webauthn" and f.credential_id]


def registration_options(user: User) -> tuple[str, str]:
    """(options JSON for navigator.credentials.create, the challenge to keep server-side)."""
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id, rp_name=current_app.config["MFA_TOTP_ISSUER"], user_name=user.username,
        user_id=user.sub.encode(), user_display_name=user.username,
        timeout=current_app.config["MFA_CHALLENGE_TTL"] * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user.id),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def _credential(raw) -> dict:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise PasskeyInvalid() from None
    if not isinstance(raw, dict):
        raise PasskeyInvalid()
    return raw


def enrol_webauthn(user: User, credential, challenge: str, label: str | None = None) -> SecondFactor:
    ATTEMPTS.take(user.id)
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=_credential(credential), expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.add("mfa.enrolment", "failure", actor=user.username, subject=user.sub, kind="webauthn")
        db.session.commit()
        raise PasskeyInvalid() from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(select(SecondFactor.id).where(SecondFactor.credential_id == credential_id)):
        raise PasskeyInvalid("该通行密钥已绑定")
    ATTEMPTS.reset(user.id)
    factor = SecondFactor(
        user_id=user.id, kind="webauthn", label=(label or "通行密钥")[:64], credential_id=credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        device_type=verified.credential_device_type.value, last_used_at=_now(),
    )
    db.session.add(factor)
    db.session.flush()
    audit.add("mfa.enrolled", actor=user.username, subject=user.sub, kind="webauthn",
              factor_id=factor.id)
    db.session.commit()
    return factor


def authentication_options(user: User) -> tuple[str, str]:
    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=_descriptors(user.id),
        timeout=current_app.config["MFA_CHALLENGE_TTL"] * 1000,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def webauthn_amr(factor: SecondFactor) -> str:
    return "swk" if factor.device_type == CredentialDeviceType.MULTI_DEVICE.value else "hwk"


def verify_webauthn(user: User, credential, challenge: str, *, purpose: str) -> list[str]:
    ATTEMPTS.take(user.id)
    rp_id, origin = relying_party()
    data = _credential(credential)
    factor = db.session.scalar(select(SecondFactor).where(
        SecondFactor.user_id == user.id, SecondFactor.kind == "webauthn",
        SecondFactor.credential_id == str(data.get("id") or data.get("rawId") or ""),
    ))
    try:
        if factor is None:
            raise ValueError("not a credential of this account")
        verified = verify_authentication_response(
            credential=data, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=factor.public_key,
            credential_current_sign_count=factor.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.add("mfa.verified", "failure", actor=user.username, subject=user.sub, method="webauthn",
                  purpose=purpose)
        db.session.commit()
        raise PasskeyInvalid() from None
    ATTEMPTS.reset(user.id)
    factor.sign_count = verified.new_sign_count
    factor.last_used_at = _now()
    amr = webauthn_amr(factor)
    audit.add("mfa.verified", actor=user.username, subject=user.sub, method="webauthn",
              purpose=purpose, factor_id=factor.id)
    db.session.commit()
    return [amr]


# -- removing ---------------------------------------------------------------------------------------
def remove_factor(user: User, factor_id: int) -> None:
    factor = db.session.get(SecondFactor, factor_id)
    if factor is None or factor.user_id != user.id:
        raise FactorNotFound()
    remaining = [f for f in factors_of(user.id) if f.id != factor_id]
    if is_staff(user) and not remaining:
        raise LastStaffFactor()
    db.session.delete(factor)
    if not remaining:  # nothing left to recover: the codes go with the last factor
        db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.add("mfa.removed", actor=user.username, subject=user.sub, kind=factor.kind,
              factor_id=factor_id)
    db.session.commit()


def reset_factors(user: User, *, actor: str, reason: str) -> int:
    """Every factor and recovery code of an account removed (a staff member lost their phone);
    the account then enrols again through a new link."""
    count = len(factors_of(user.id))
    db.session.execute(db.delete(SecondFactor).where(SecondFactor.user_id == user.id))
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.add("mfa.reset", actor=actor, subject=user.sub, reason=reason, removed=count)
    db.session.commit()
    return count


# -- the enrolment link of a new staff member -------------------------------------------------------
def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_ENROLMENT_SALT)


def enrolment_token(user: User) -> str:
    return _serializer().dumps({"uid": user.id, "sub": user.sub, "jti": secrets.token_urlsafe(12)})


def enrolment_link(user: User) -> str:
    return f"{current_app.config['ISSUER']}/mfa/enrol/{enrolment_token(user)}"


def check_enrolment_token(token: str) -> User:
    """The staff account a link is for, if it is genuine, unexpired and unspent."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["MFA_ENROLMENT_LINK_LIFETIME"])
    except (BadSignature, SignatureExpired):
        raise EnrolmentLinkInvalid() from None
    if redis_store.exists(_ENROLMENT_SPENT + str(data.get("jti"))):
        raise EnrolmentLinkInvalid()
    user = db.session.get(User, data.get("uid"))
    if user is None or user.sub != data.get("sub") or not user.is_active:
        raise EnrolmentLinkInvalid()
    if has_factor(user.id):  # a link enrols the first factor; more are added after signing in with it
        raise EnrolmentLinkInvalid()
    return user


def spend_enrolment_token(token: str) -> bool:
    """Mark a link used (once: the first caller wins).  Called when the enrolment succeeds."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["MFA_ENROLMENT_LINK_LIFETIME"])
    except (BadSignature, SignatureExpired):
        return False
    return bool(redis_store.set(_ENROLMENT_SPENT + str(data.get("jti")), "1", nx=True,
                                ex=current_app.config["MFA_ENROLMENT_LINK_LIFETIME"]))
