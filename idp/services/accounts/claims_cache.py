"""What userinfo needs to know about a user, cached in Redis so that a bearer token's userinfo
call costs no PostgreSQL round trip when nothing about the user changed.

Two keys per user: ``user-version:<sub>``, a counter bumped by every committed change of the
user's row that userinfo could see (status — lock, disable, closure —, profile, phone, document,
role), and ``user-claims:<sub>``, the snapshot tagged with the version it was read under.  A
snapshot is used only while its tag equals the current version, so a change is seen on the next
request, and a reader that loaded the row just before a change cannot store a stale snapshot
under the new version.  The counter is bumped when the change is flushed (before the commit: if
Redis is unreachable the use case fails rather than leaving a stale snapshot usable) and again
once it is committed.  Snapshots live ``_SNAPSHOT_SECONDS``; a version key outlives any snapshot
tagged before it (``_VERSION_SECONDS``), so an expired counter never re-validates an old one.

The snapshot holds personal data (name, phone, document number): it is stored encrypted with the
personal-data cipher (``identity.pii``), whole, bound to its key; Redis never holds it in clear.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

import redis as redis_lib
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ...extensions import redis_store
from ...models import User
from ...models.user import UserStatus
from ..identity import pii

log = logging.getLogger(__name__)

VERSION = "user-version:"
SNAPSHOT = "user-claims:"
_SNAPSHOT_SECONDS = 300
_VERSION_SECONDS = 24 * 3600
_CHANGED = "idp_users_changed"
#: the columns a snapshot is made of: a change to any other (last login...) keeps it valid
_WATCHED = ("status", "sub", "username", "name", "gender", "birthdate", "updated_at", "phone_enc",
            "phone_verified", "real_name_verified", "id_type", "id_number_enc", "role", "user_type",
            "unit_name", "uscc", "unit_type", "handler_id_type", "handler_id_number_enc")


@dataclass
class CachedUser:
    """The user as userinfo sees it, without the ORM: the same attribute names as ``User`` for
    what the claims read, with the phone and document number already decrypted."""

    id: int
    sub: str
    status: str
    username: str | None
    name: str | None
    gender: str | None
    birthdate: date | None
    updated_at: datetime
    phone: str | None
    phone_verified: bool
    real_name_verified: bool
    id_type: str | None
    id_number: str | None
    # a unit account (单位用户): the unit, and its handler's document decrypted like the holder's
    user_type: str = "personal"
    unit_name: str | None = None
    uscc: str | None = None
    unit_type: str | None = None
    handler_id_type: str | None = None
    handler_id_number: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE.value

    @classmethod
    def of(cls, user: User) -> CachedUser:
        cipher = pii.cipher()
        return cls(
            id=user.id, sub=user.sub, status=UserStatus(user.status).value, username=user.username,
            name=user.name, gender=user.gender, birthdate=user.birthdate, updated_at=user.updated_at,
            phone=cipher.decrypt("phone", user.phone_enc) if user.phone_enc else None,
            phone_verified=bool(user.phone_verified), real_name_verified=bool(user.real_name_verified),
            id_type=user.id_type,
            id_number=cipher.decrypt("id_number", user.id_number_enc) if user.id_number_enc else None,
            user_type=user.user_type or "personal", unit_name=user.unit_name, uscc=user.uscc,
            unit_type=user.unit_type, handler_id_type=user.handler_id_type,
            handler_id_number=(cipher.decrypt("id_number", user.handler_id_number_enc)
                               if user.handler_id_number_enc else None),
        )

    def seal(self, version: int) -> bytes:
        data = asdict(self)
        data["birthdate"] = self.birthdate.isoformat() if self.birthdate else None
        data["updated_at"] = self.updated_at.timestamp()
        data["v"] = version
        return pii.cipher().encrypt(SNAPSHOT + self.sub, json.dumps(data, ensure_ascii=False))

    @classmethod
    def unseal(cls, sub: str, blob: bytes, version: int) -> CachedUser | None:
        try:
            data = json.loads(pii.cipher().decrypt(SNAPSHOT + sub, blob))
        except Exception:  # another key, a damaged value: a miss, never an error
            return None
        if data.pop("v", None) != version:
            return None
        data["birthdate"] = date.fromisoformat(data["birthdate"]) if data["birthdate"] else None
        data["updated_at"] = datetime.fromtimestamp(data["updated_at"], timezone.utc)
        try:
            return cls(**data)
        except TypeError:  # written by another version of this class: a miss
            return None


def keys_of(sub: str) -> tuple[str, str]:
    """The keys a reader fetches (in the same MGET as anything else it needs)."""
    return VERSION + sub, SNAPSHOT + sub


def cached_user(sub: str, version_value, snapshot_value) -> CachedUser | None:
    """The snapshot read with ``keys_of(sub)``, if it is current."""
    if snapshot_value is None:
        return None
    return CachedUser.unseal(sub, snapshot_value, int(version_value or 0))


def remember(user: User, version_value) -> CachedUser:
    """Store the snapshot of a user just read from the database, tagged with the version read
    *before* that read; a failure to store costs the next request a database read, nothing else."""
    snapshot = CachedUser.of(user)
    try:
        redis_store.set(SNAPSHOT + user.sub, snapshot.seal(int(version_value or 0)), ex=_SNAPSHOT_SECONDS)
    except redis_lib.RedisError:
        log.warning("userinfo snapshot not stored", exc_info=True)
    return snapshot


def _bump(subs) -> None:
    pipe = redis_store.pipeline(transaction=False)
    for sub in subs:
        pipe.incr(VERSION + sub)
        pipe.expire(VERSION + sub, _VERSION_SECONDS)
    pipe.execute()


def _watched_change(user: User) -> bool:
    state = inspect(user)
    return any(state.attrs[name].history.has_changes() for name in _WATCHED)


@event.listens_for(Session, "before_flush")
def _note_user_changes(session: Session, _flush_context, _instances) -> None:
    subs = {u.sub for u in session.dirty if isinstance(u, User) and u.sub and _watched_change(u)}
    subs |= {u.sub for u in session.deleted if isinstance(u, User) and u.sub}
    if subs:
        _bump(subs)  # before the commit: a Redis that cannot hear it fails the use case
        session.info.setdefault(_CHANGED, set()).update(subs)


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    subs = session.info.pop(_CHANGED, None)
    if subs:
        try:
            _bump(subs)  # a reader between the first bump and the commit may have stored the old row
        except redis_lib.RedisError:
            log.warning("user versions not bumped after commit", exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _forget_user_changes(session: Session, _previous_transaction) -> None:
    session.info.pop(_CHANGED, None)
