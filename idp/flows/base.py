"""The step machinery.

A ``FlowDefinition`` is an ordered list of named steps.  A ``Flow`` is one citizen's run through
it: a random id kept in their (server-side) session, and a record in Redis holding the steps
completed so far and the data they gathered.  The record is encrypted with the personal-data
cipher (it carries ID numbers, phones, card numbers until the last step), expires after a
period without activity and in any case after an absolute lifetime.

Views ask ``flow.require(step)`` before showing a step: a step cannot be reached before every
step it follows is complete (``StepNotReached`` names the first missing one).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import session

from ..errors import UserError
from ..extensions import redis_store
from ..services.identity import pii


class FlowExpired(UserError):
    message = "页面已超时，请重新填写"


class FlowFinished(FlowExpired):
    """The flow reached its last step; nothing before it can be done again in this flow."""

    message = "本次办理已完成，如需重新办理请从头开始"


class StepNotReached(Exception):
    """The requested step needs ``step`` completed first."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


@dataclass(frozen=True)
class FlowDefinition:
    kind: str  # "register", "recovery", …: the Redis namespace and the session slot
    steps: tuple[str, ...]
    idle_ttl: int = 30 * 60  # seconds without a request before the flow is forgotten
    max_age: int = 2 * 3600  # absolute lifetime

    @property
    def _session_key(self) -> str:
        return f"flow:{self.kind}"

    def _redis_key(self, flow_id: str) -> str:
        return f"flow:{self.kind}:{flow_id}"

    def start(self) -> Flow:
        """A fresh flow; replaces (and deletes) any previous one of this kind in the session."""
        old = session.get(self._session_key)
        if old:
            redis_store.delete(self._redis_key(old))
        flow = Flow(self, secrets.token_urlsafe(24), created_at=time.time())
        flow.save()
        session[self._session_key] = flow.id
        return flow

    def load(self) -> Flow | None:
        """This session's flow of this kind, or None when there is none or it expired."""
        flow_id = session.get(self._session_key)
        if not flow_id:
            return None
        blob = redis_store.get(self._redis_key(flow_id))
        if blob is None:
            session.pop(self._session_key, None)
            return None
        state = json.loads(pii.cipher().decrypt(self._aad, blob))
        flow = Flow(self, flow_id, created_at=state["created_at"], completed=state["completed"], data=state["data"])
        remaining = int(self.max_age - (time.time() - flow.created_at))
        if remaining <= 0:
            flow.discard()
            return None
        redis_store.expire(self._redis_key(flow_id), min(self.idle_ttl, remaining))  # activity
        return flow

    def in_session(self) -> bool:
        """Whether this session started a flow of this kind (it may have expired since)."""
        return bool(session.get(self._session_key))

    @property
    def _aad(self) -> str:
        return f"flow:{self.kind}"


@dataclass
class Flow:
    definition: FlowDefinition
    id: str
    created_at: float
    completed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    # -- where the citizen is ----------------------------------------------------------------
    def is_complete(self, step: str) -> bool:
        return step in self.completed

    def first_missing(self, before: str | None = None) -> str | None:
        """The first step not yet complete (among those before ``before``, if given)."""
        steps = self.definition.steps
        if before is not None:
            steps = steps[: steps.index(before)]
        return next((s for s in steps if s not in self.completed), None)

    def require(self, step: str) -> None:
        if step not in self.definition.steps:
            raise ValueError(f"{step!r} is not a step of {self.definition.kind}")
        if self.finished and step != self.definition.steps[-1]:
            raise FlowFinished()  # e.g. no more SMS codes from a registration that is done
        missing = self.first_missing(before=step)
        if missing is not None:
            raise StepNotReached(missing)

    @property
    def finished(self) -> bool:
        return self.is_complete(self.definition.steps[-1])

    # -- changing it -------------------------------------------------------------------------
    def complete(self, step: str, **values: Any) -> None:
        self.require(step)
        self.data.update(values)
        if step not in self.completed:
            self.completed.append(step)
        self.save()

    def remember(self, **values: Any) -> None:
        """Keep values without completing a step (drafts, counters, proofs such as a verified
        phone)."""
        self.data.update(values)
        self.save()

    def count(self, name: str) -> int:
        """Increment and return a per-flow counter (attempt limits)."""
        counters = self.data.setdefault("_counters", {})
        counters[name] = counters.get(name, 0) + 1
        self.save()
        return counters[name]

    def finish(self, keep: dict[str, Any] | None = None) -> None:
        """Mark every step complete and drop the gathered data except ``keep`` (what the final
        page shows): personal data does not outlive its purpose."""
        self.completed = list(self.definition.steps)
        self.data = dict(keep or {})
        self.save()

    def save(self) -> None:
        d = self.definition
        remaining = int(d.max_age - (time.time() - self.created_at))
        if remaining <= 0:
            self.discard()
            raise FlowExpired()
        state = {"created_at": self.created_at, "completed": self.completed, "data": self.data}
        blob = pii.cipher().encrypt(d._aad, json.dumps(state, ensure_ascii=False))
        redis_store.set(d._redis_key(self.id), blob, ex=min(d.idle_ttl, remaining))

    def discard(self) -> None:
        redis_store.delete(self.definition._redis_key(self.id))
        if session.get(self.definition._session_key) == self.id:
            session.pop(self.definition._session_key, None)
