"""The user centre (统一用户管理平台): 查看用户信息 and, in later issues, self-service."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ..auth.guards import login_required
from ..services.profile import masked_profile

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/")
@login_required
def home():
    return render_template("account/home.html", profile=masked_profile(g.user))
