"""The step engine alone (``idp.flows.base``): lifetimes, order, the finished flow, one read and
at most one write of the record per request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from flask import session

from idp.extensions import redis_store
from idp.flows import base
from idp.flows.base import FlowDefinition, FlowExpired, FlowFinished, Step, StepNotReached


@dataclass
class ToyState:
    name: str = ""
    choice: str | None = None
    seen: list[str] = field(default_factory=list)


TOY = FlowDefinition(
    "toy",
    (
        Step("first", "第一步", "toy.first", entry="start"),
        Step("choose", "选择", "toy.choose"),
        Step("check", "核验", "toy.check_a", variant="a"),
        Step("check", "核验", "toy.check_b", variant="b"),
        Step("extra", "附加", "toy.extra", needs=("first",)),  # reachable right after the first step
        Step("done", "完成", "toy.done"),
    ),
    ToyState,
    idle_ttl=60,
    max_age=600,
    variant_of=lambda state: state.choice,
)


def _reload(app, flow_id: str):
    """The flow as the next request sees it."""
    with app.test_request_context():
        session[TOY.session_key] = flow_id
        return TOY.load()


def test_steps_are_reached_in_order(app):
    with app.test_request_context():
        flow = TOY.start()
        with pytest.raises(StepNotReached) as missing:
            flow.require("check")
        assert missing.value.step == "first"
        flow.complete("first")
        with pytest.raises(StepNotReached) as missing:
            flow.complete("check")  # completing needs the same order
        assert missing.value.step == "choose"
        flow.require("extra")  # its own needs: only the first step
        with pytest.raises(StepNotReached):
            flow.require("done")
        with pytest.raises(ValueError):
            flow.require("nowhere")


def test_a_split_step_follows_the_choice(app):
    with app.test_request_context():
        flow = TOY.start()
        assert TOY.step("check", flow).endpoint == "toy.choose"  # no choice yet: go and make it
        flow.state.choice = "b"
        assert TOY.step("check", flow).endpoint == "toy.check_b"
        assert TOY.titles() == [("first", "第一步"), ("choose", "选择"), ("check", "核验"), ("extra", "附加"),
                                ("done", "完成")]


def test_a_finished_flow_refuses_its_earlier_steps(app):
    with app.test_request_context():
        flow = TOY.start()
        for name in ("first", "choose"):
            flow.complete(name)
        flow.state.choice, flow.state.name = "a", "王小明"
        flow.complete("check")
        flow.finish(name="kept")
        flow.save()
        flow_id = flow.id
    again = _reload(app, flow_id)
    assert again.finished and again.state == ToyState(name="kept")  # the rest of the state is gone
    again.require("done")
    for name in ("first", "choose", "check", "extra"):
        with pytest.raises(FlowFinished):
            again.require(name)


def test_the_state_is_typed_and_survives_a_request(app):
    with app.test_request_context():
        flow = TOY.start()
        flow.complete("first")
        flow.state.name, flow.state.seen = "𠮷野·家", ["a", "b"]
        flow.save()
        flow_id = flow.id
    again = _reload(app, flow_id)
    assert isinstance(again.state, ToyState)
    assert again.state == ToyState(name="𠮷野·家", seen=["a", "b"]) and again.completed == ["first"]


def test_absolute_lifetime(app, monkeypatch):
    now = time.time()
    monkeypatch.setattr(base, "clock", lambda: now)
    with app.test_request_context():
        flow = TOY.start()
        flow.complete("first")
        flow.save()
        flow_id, key = flow.id, TOY.redis_key(flow.id)
    # near the end of its life the record expires with it, whatever the idle timeout says
    monkeypatch.setattr(base, "clock", lambda: now + 590)
    assert _reload(app, flow_id) is not None
    with app.app_context():
        assert 0 < redis_store.ttl(key) <= 10
    monkeypatch.setattr(base, "clock", lambda: now + 601)
    assert _reload(app, flow_id) is None
    with app.app_context():
        assert not redis_store.exists(key)
    # and a flow cannot be written past it either
    with app.test_request_context():
        monkeypatch.setattr(base, "clock", lambda: now)
        late = TOY.start()
        monkeypatch.setattr(base, "clock", lambda: now + 601)
        late.state.name = "late"
        with pytest.raises(FlowExpired):
            late.save()


def test_idle_expiry(app):
    idle = FlowDefinition("toy_idle", TOY.steps, ToyState, idle_ttl=1, max_age=600, variant_of=TOY.variant_of)
    with app.test_request_context():
        flow = idle.start()
        flow.complete("first")
        flow.save()
        flow_id = flow.id
    with app.test_request_context():
        session[idle.session_key] = flow_id
        assert idle.load() is not None  # activity renews the idle expiry
    time.sleep(1.2)
    with app.test_request_context():
        session[idle.session_key] = flow_id
        assert idle.load() is None
        assert idle.session_key not in session  # forgotten, so the next page can say it expired


class _Counting:
    """Counts the commands on flow records (other keys are sessions, captchas…)."""

    def __init__(self, client, monkeypatch):
        self.calls: list[str] = []
        for name in ("get", "getex", "set", "expire", "delete"):
            original = getattr(client, name)

            def counted(*args, _name=name, _original=original, **kwargs):
                if args and str(args[0]).startswith("flow:register"):
                    self.calls.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(client, name, counted)


def test_one_read_and_at_most_one_write_per_request(app, client, monkeypatch):
    from ..register.conftest import Wizard

    wizard = Wizard(client)
    wizard.start()
    counting = _Counting(app.extensions["idp_redis"], monkeypatch)
    assert wizard.login_info().status_code == 302  # GET the page, POST it
    # GET: one GETEX, nothing written; POST: one GETEX and one SET of the changed record
    assert counting.calls == ["getex", "getex", "set"]
    counting.calls.clear()
    assert client.get("/register/identity").status_code == 200
    assert counting.calls == ["getex"]


def test_the_guard_sends_visitors_where_they_belong(client):
    from ..register.conftest import Wizard

    assert client.get("/register/verification").headers["Location"] == "/register"
    wizard = Wizard(client)
    wizard.start()
    assert client.get("/register/verification").headers["Location"] == "/register/login-info"
    wizard.login_info()
    assert client.get("/register/verification").headers["Location"] == "/register/identity"


def test_a_step_is_one_entry_and_one_handler(keys_dir):
    """A flow of steps with standard pages: the list and the handlers are all there is to write."""
    from flask import Blueprint
    from flask_wtf import FlaskForm
    from jinja2 import ChoiceLoader, DictLoader
    from wtforms import StringField

    from idp.errors import UserError
    from idp.form_feedback import register_step_pages

    from ..conftest import make_app

    class AnswerForm(FlaskForm):
        class Meta:
            csrf = False

        answer = StringField()

    @dataclass
    class QuizState:
        answers: list[str] = field(default_factory=list)

    def begin(_flow, form):
        flow = QUIZ.start()
        flow.complete("begin")
        flow.state.answers.append(form.answer.data)
        return flow

    def ask(flow, form):
        if form.answer.data != "深圳":
            raise UserError("答案不正确")
        flow.complete("ask")
        flow.state.answers.append(form.answer.data)

    QUIZ = FlowDefinition("quiz", (
        Step("begin", "开始", "quiz.begin", AnswerForm, "quiz/step.html", begin, entry="open", path="/begin"),
        Step("ask", "提问", "quiz.ask", AnswerForm, "quiz/step.html", ask, path="/ask",
             context=lambda flow: {"hint": "、".join(flow.state.answers)}),
        Step("done", "完成", "quiz.done", template="quiz/done.html", path="/done",
             context=lambda flow: {"hint": "、".join(flow.state.answers)}),
    ), QuizState)

    app = make_app(keys_dir, WTF_CSRF_ENABLED=False)  # the toy page has no CSRF field; the engine is the subject
    app.jinja_loader = ChoiceLoader([DictLoader({
        "quiz/step.html": "{{ steps|map('last')|join('→') }}|{{ current }}|{{ error or '' }}|{{ hint }}",
        "quiz/done.html": "{{ current }}|{{ hint }}",
    }), app.jinja_loader])
    bp = Blueprint("quiz", __name__, url_prefix="/quiz")
    register_step_pages(bp, QUIZ)
    app.register_blueprint(bp)

    client = app.test_client()
    assert client.get("/quiz/ask").headers["Location"] == "/quiz/begin"  # not before the first step
    assert client.get("/quiz/begin").data.decode() == "开始→提问→完成|begin||"
    begun = client.post("/quiz/begin", data={"answer": "王小明"})
    assert begun.headers.get("Location") == "/quiz/ask", (begun.status_code, begun.data[:300])
    wrong = client.post("/quiz/ask", data={"answer": "北京"})
    assert wrong.status_code == 400 and wrong.data.decode() == "开始→提问→完成|ask|答案不正确|王小明"
    assert client.post("/quiz/ask", data={"answer": "深圳"}).headers["Location"] == "/quiz/done"
    assert client.get("/quiz/done").data.decode() == "done|王小明、深圳"
    assert client.post("/quiz/done").status_code == 405
