"""Extension objects, created unattached and bound in the application factory."""

from __future__ import annotations

import logging

import fakeredis
import redis as redis_lib
from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
server_session = Session()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def commit_keeping_loaded() -> None:
    """Commit without expiring what this request has loaded.

    For a request that goes on using rows it has just written (the user at login, the code and
    user behind an ID token): expiring them would reload each with another SELECT, a fifth of
    the CPU of such a request (issue #5).  What they hold is what this transaction committed."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


class RedisStore:
    """The Redis connection of the app: a real server, or an in-process fakeredis stand-in.

    Sessions, captchas, SMS codes, lockout counters and replay caches all live here so that
    they hold across processes; the stand-in is for one process only and says so.
    """

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            client = redis_lib.Redis.from_url(url, health_check_interval=30)
        else:
            log.warning(
                "IDP_REDIS_URL is not set: using an in-process fakeredis server. "
                "Sessions, codes and limits then serve this one process only."
            )
            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        app.extensions["idp_redis"] = client

    @property
    def client(self) -> redis_lib.Redis:
        return current_app.extensions["idp_redis"]

    def __getattr__(self, name: str):
        return getattr(self.client, name)


redis_store = RedisStore()
