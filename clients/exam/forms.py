"""Forms of the exam service (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SubmitField


class LogoutForm(FlaskForm):
    submit = SubmitField("退出")
