"""The user centre's blueprint: its views are in ``routes`` (查看, 安全中心) and ``edit`` (变更用户信息)."""

from flask import Blueprint

from ..form_rules import rules_context

bp = Blueprint("account", __name__, url_prefix="/account")
bp.context_processor(rules_context)
