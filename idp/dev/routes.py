"""Development tools, registered only when ``DEV_TOOLS`` is on (development and testing settings;
production refuses it): the SMS outbox, where the development SMS sender leaves every message."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from ..services.identity.rules import PhoneInvalid, check_mobile
from ..services.verification.sms import OutboxSmsSender

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"  # codes are secrets, even in development
    return response


def _phone_filter() -> str | None:
    raw = request.args.get("phone", "").strip()
    if not raw:
        return None
    try:
        return check_mobile(raw)
    except PhoneInvalid:
        return raw  # matches nothing; the page says so


@bp.get("/sms-outbox")
def sms_outbox():
    phone = _phone_filter()
    return render_template("dev/sms_outbox.html", messages=OutboxSmsSender.messages(phone), phone=phone or "")


@bp.get("/sms-outbox.json")
def sms_outbox_json():
    """The outbox, newest first: ``?phone=`` to see one phone's messages (tests, the demo)."""
    phone = _phone_filter()
    limit = min(max(request.args.get("limit", 50, type=int), 1), 500)
    return jsonify(messages=OutboxSmsSender.messages(phone, limit=limit))
