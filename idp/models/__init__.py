"""Typed SQLAlchemy 2 models.  Every schema change is an Alembic migration (idp/migrations)."""

from .audit import AuditEvent
from .client import Client
from .consent import Consent
from .privacy import PrivacyConsent
from .second_factor import RecoveryCode, SecondFactor
from .security_question import SecurityAnswer
from .token import AuthorizationCode, Token
from .user import User, UserStatus

__all__ = ["AuditEvent", "AuthorizationCode", "Client", "Consent", "PrivacyConsent", "RecoveryCode", "SecondFactor",
           "SecurityAnswer", "Token", "User", "UserStatus"]
