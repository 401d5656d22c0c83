"""The step engine.

A ``FlowDefinition`` is an ordered list of ``Step`` objects, each holding everything about one
step: its name, the title in the step bar, the endpoint of its page, its form class, its template
and its handler (the function that does the step's work), the way a Keycloak authenticator is one
object.  A ``Flow`` is one citizen's run through a definition: a random id kept in their
(server-side) session, and a record in Redis holding the steps completed so far and a typed
state (one dataclass per flow).  The record is encrypted with the personal-data cipher (it
carries ID numbers, phones, card numbers until the last step), expires after a period without
activity and in any case after an absolute lifetime.

A step cannot be reached before the steps it needs (by default every step listed before it):
``flow.require(step)`` raises ``StepNotReached`` naming the first missing one, and once the last
step is complete nothing before it can be done again (``FlowFinished``).  ``guard`` is the one
decorator every flow page uses to get there.

The record is read once per request (GETEX: the read also renews the idle expiry) and written at
most once, after the view, and only when the request changed it.  Budgets and attempt counters
do not live here: they are atomic keyed limits in the services, taken before the work, because a
record read by two parallel requests and written back by both cannot count.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flask import after_this_request, current_app, flash, g, has_request_context, redirect, request, session, url_for

from ..errors import UserError
from ..extensions import redis_store
from ..services.identity import pii

S = TypeVar("S")

clock: Callable[[], float] = time.time  # unit tests move time through this


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
class Step:
    """One step of a flow.

    ``handler(flow, form)`` does the step's work once its form validated (for an ``entry`` step,
    whose flow does not exist yet, it starts one and returns it).  ``variant`` splits a step into
    alternatives (忘记密码's 验证身份 by SMS or by 密保问题): they share the name (completing either
    completes the step) and the flow's ``variant_of`` says which one applies.  ``needs`` lists the
    steps that must be complete first (default: every step listed before this one).  ``entry``
    marks a page reachable without a flow: ``"start"`` starts one when there is none
    (registration's first page), ``"open"`` shows the page without one (a recovery's first page,
    which starts a fresh flow when it is submitted).

    A step with a ``path`` gets the standard page (``form_feedback.register_step_pages``): the
    guard, the form (``prefill(flow, form)`` on a GET), the handler, the next step or the page
    again with the error; ``context(flow)`` adds what its template shows besides the form, and
    ``secrets`` names the fields never sent back.  Steps with a page of their own (an SMS button,
    a 上一步 that keeps drafts) leave ``path`` empty and their blueprint defines the view."""

    name: str
    title: str
    endpoint: str
    form: type | None = None
    template: str | None = None
    handler: Callable[..., Any] | None = None
    variant: str | None = None
    needs: tuple[str, ...] | None = None
    entry: str | None = None
    path: str | None = None
    context: Callable[[Any], dict[str, Any]] | None = None
    prefill: Callable[[Any, Any], None] | None = None
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlowDefinition(Generic[S]):
    kind: str  # "register", "recover_password", …: the Redis namespace and the session slot
    steps: tuple[Step, ...]
    state: type[S]  # a dataclass of JSON-friendly fields, one per flow
    idle_ttl: int | str = 30 * 60  # seconds without a request before the flow is forgotten (or a setting's name)
    max_age: int | str = 2 * 3600  # absolute lifetime (or a setting's name)
    variant_of: Callable[[Any], str | None] | None = None  # which variant of a split step applies
    start_endpoint: str | None = None  # where a visitor without a flow begins (default: the first step)

    # -- the steps ---------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(step.name for step in self.steps))

    @property
    def first(self) -> Step:
        return self.steps[0]

    @property
    def last(self) -> str:
        return self.names[-1]

    def titles(self) -> list[tuple[str, str]]:
        """The step bar: (name, title) once per step name."""
        return list(dict.fromkeys((step.name, step.title) for step in self.steps))

    def step(self, name: str, flow: Flow | None = None) -> Step:
        """The step called ``name``; for a split step, the variant the flow chose (or the first)."""
        candidates = [s for s in self.steps if s.name == name]
        if not candidates:
            raise ValueError(f"{name!r} is not a step of {self.kind}")
        if flow is not None and self.variant_of is not None and len(candidates) > 1:
            chosen = self.variant_of(flow.state)
            for candidate in candidates:
                if candidate.variant == chosen:
                    return candidate
            return self.step(self.names[self.names.index(name) - 1], flow)  # no choice yet: go back to make it
        return candidates[0]

    def needs(self, name: str) -> tuple[str, ...]:
        explicit = self.step(name).needs
        return explicit if explicit is not None else self.names[: self.names.index(name)]

    def url_for(self, name: str, flow: Flow | None = None) -> str:
        return url_for(self.step(name, flow).endpoint)

    def after(self, name: str) -> str:
        """The step that follows ``name`` in the list."""
        return self.names[self.names.index(name) + 1]

    # -- lifetimes ---------------------------------------------------------------------------------
    def _seconds(self, value: int | str) -> int:
        return int(current_app.config[value]) if isinstance(value, str) else int(value)

    @property
    def idle_seconds(self) -> int:
        return self._seconds(self.idle_ttl)

    @property
    def max_age_seconds(self) -> int:
        return self._seconds(self.max_age)

    # -- storage -----------------------------------------------------------------------------------
    @property
    def session_key(self) -> str:
        return f"flow:{self.kind}"

    def redis_key(self, flow_id: str) -> str:
        return f"flow:{self.kind}:{flow_id}"

    @property
    def _aad(self) -> str:
        return f"flow:{self.kind}"

    def start(self) -> Flow[S]:
        """A fresh flow; replaces (and deletes) any previous one of this kind in the session."""
        old = session.get(self.session_key)
        if old:
            redis_store.delete(self.redis_key(old))
            _loaded().pop(self.redis_key(old), None)
        now = clock()
        # the creation time is part of the id, so a load knows the remaining lifetime before it
        # reads the record and renews its expiry in the same command
        flow = Flow(self, f"{int(now):x}.{secrets.token_urlsafe(24)}", created_at=now, state=self.state())
        session[self.session_key] = flow.id
        flow._track()
        return flow

    def load(self) -> Flow[S] | None:
        """This session's flow of this kind, or None when there is none or it expired.  Loaded
        once per request: a second call returns the same object."""
        flow_id = session.get(self.session_key)
        if not flow_id:
            return None
        key = self.redis_key(flow_id)
        if (known := _loaded().get(key)) is not None:
            return None if known._discarded else known
        remaining = self._remaining(_created_at(flow_id))
        if remaining <= 0:
            redis_store.delete(key)
            session.pop(self.session_key, None)
            return None
        blob = redis_store.getex(key, ex=min(self.idle_seconds, remaining))  # read + activity, one trip
        if blob is None:
            session.pop(self.session_key, None)
            return None
        record = json.loads(pii.cipher().decrypt(self._aad, blob))
        names = {f.name for f in dataclasses.fields(self.state)}
        state = self.state(**{k: v for k, v in record["state"].items() if k in names})
        flow = Flow(self, flow_id, created_at=record["created_at"], completed=list(record["completed"]),
                    state=state, _stored=blob, _existed=True)
        flow._snapshot = flow._serialise()
        flow._track()
        return flow

    def in_session(self) -> bool:
        """Whether this session started a flow of this kind (it may have expired since)."""
        return bool(session.get(self.session_key))

    def _remaining(self, created_at: float) -> int:
        return int(self.max_age_seconds - (clock() - created_at))

    # -- the one guard of every flow page ------------------------------------------------------------
    def guard(self, name: str, variant: str | None = None):
        """Decorate the view of step ``name``: it gets the flow as its first argument, or the
        visitor is sent where they belong (the first step, or the first step still missing)."""
        step = self.step(name) if variant is None else next(
            s for s in self.steps if s.name == name and s.variant == variant)

        def decorator(view):
            @functools.wraps(view)
            def wrapped(**kwargs):
                had_flow = self.in_session()
                flow = self.load()
                finished = flow is not None and flow.finished and name != self.last
                if flow is None or finished:
                    expired = flow is None and had_flow
                    if step.entry == "start" and request.method != "POST":
                        return view(self.start(), **kwargs)
                    if step.entry == "open":
                        return view(None, **kwargs)
                    if expired:
                        flash(FlowExpired.message, "error")
                    return redirect(url_for(self.start_endpoint or self.first.endpoint))
                try:
                    flow.require(name)
                except StepNotReached as missing:
                    return redirect(self.url_for(missing.step, flow))
                if variant is not None and self.variant_of is not None and self.variant_of(flow.state) != variant:
                    return redirect(self.url_for(name, flow))
                return view(flow, **kwargs)

            return wrapped

        return decorator

def _created_at(flow_id: str) -> float:
    try:
        return float(int(flow_id.split(".", 1)[0], 16))
    except ValueError:
        return 0.0  # not an id this engine made: expired


def _loaded() -> dict[str, Flow]:
    """The flows this request loaded or started, by Redis key (one object per flow per request)."""
    if not has_request_context():
        return {}
    if "idp_flows" not in g:
        g.idp_flows = {}
    return g.idp_flows


@dataclass
class Flow(Generic[S]):
    definition: FlowDefinition[S]
    id: str
    created_at: float
    state: S
    completed: list[str] = field(default_factory=list)
    _stored: bytes | None = field(default=None, repr=False)
    _existed: bool = field(default=False, repr=False)
    _snapshot: str | None = field(default=None, repr=False)
    _discarded: bool = field(default=False, repr=False)

    # -- where the citizen is ----------------------------------------------------------------
    def is_complete(self, step: str) -> bool:
        return step in self.completed

    def first_missing(self, before: str | None = None) -> str | None:
        """The first step not yet complete (among those ``before`` needs, if given)."""
        names = self.definition.needs(before) if before is not None else self.definition.names
        return next((s for s in names if s not in self.completed), None)

    def require(self, step: str) -> None:
        if step not in self.definition.names:
            raise ValueError(f"{step!r} is not a step of {self.definition.kind}")
        if self.finished and step != self.definition.last:
            raise FlowFinished()  # e.g. no more SMS codes from a registration that is done
        missing = self.first_missing(before=step)
        if missing is not None:
            raise StepNotReached(missing)

    @property
    def finished(self) -> bool:
        return self.is_complete(self.definition.last)

    @property
    def data(self) -> dict[str, Any]:
        """A read-only copy of the state as a dict (logs, tests)."""
        return dataclasses.asdict(self.state)

    @property
    def variant(self) -> str | None:
        return self.definition.variant_of(self.state) if self.definition.variant_of else None

    # -- changing it (written once, after the view) ----------------------------------------------
    def complete(self, step: str) -> None:
        self.require(step)
        if step not in self.completed:
            self.completed.append(step)

    def reopen(self, step: str) -> None:
        """``step`` and every step after it are to be done again (another choice was made)."""
        later = self.definition.names[self.definition.names.index(step):]
        self.completed = [name for name in self.completed if name not in later]

    def finish(self, **keep: Any) -> None:
        """Mark every step complete and drop the gathered state except ``keep`` (what the final
        page shows): personal data does not outlive its purpose."""
        self.completed = list(self.definition.names)
        self.state = self.definition.state(**keep)

    def discard(self) -> None:
        self._discarded = True
        redis_store.delete(self.definition.redis_key(self.id))
        if has_request_context() and session.get(self.definition.session_key) == self.id:
            session.pop(self.definition.session_key, None)

    # -- storage ---------------------------------------------------------------------------------
    def _serialise(self) -> str:
        record = {"created_at": self.created_at, "completed": self.completed,
                  "state": dataclasses.asdict(self.state)}
        return json.dumps(record, ensure_ascii=False, sort_keys=True)

    def save(self) -> None:
        """Write the record if it changed since it was read (the engine calls this once, after
        the view; code outside a request calls it itself)."""
        if self._discarded:
            return
        d = self.definition
        remaining = d._remaining(self.created_at)
        if remaining <= 0:
            self.discard()
            raise FlowExpired()
        serialised = self._serialise()
        if serialised == self._snapshot:
            return
        blob = pii.cipher().encrypt(d._aad, serialised)
        # a flow that existed is only rewritten while it still exists: a parallel request that
        # ended it (too many failures, the last step) is not undone by this one
        written = redis_store.set(d.redis_key(self.id), blob, ex=min(d.idle_seconds, remaining),
                                  xx=self._existed)
        if written:
            self._existed, self._snapshot = True, serialised

    def _track(self) -> None:
        if not has_request_context():
            return
        _loaded()[self.definition.redis_key(self.id)] = self

        @after_this_request
        def _save(response):
            try:
                self.save()
            except FlowExpired:
                pass  # it ran out during this request: the next one starts over
            return response
