"""``register_account``: the one path of the wizard and ``idp users create`` — identity rules,
uniqueness, the bank check, one transaction, a race lost cleanly, the audit trail."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from idp.errors import DocumentTaken, InvalidField, UsernameTaken
from idp.extensions import db
from idp.models import AuditEvent, User
from idp.sandbox import DEMO_CITIZEN
from idp.sandbox.bank import BankSandbox, load_records
from idp.services.verification import bank as bank_api
from idp.services.identity import pii
from idp.services.verification.bank import BankCardInactive, BankCardNotDebit, BankIdentityMismatch, BankPhoneMismatch
from idp.services.identity.rules import CardNumberChecksum, IdNumberChecksum
from idp.services.registration import register_account

from ..conftest import DEFAULT_PASSWORD, TEST_DATABASE_URL, clean_external_db, make_app
from ..live import free_port, serve
from ..register.conftest import CITIZENS, OLD_PHONE_NOW


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def sandbox_calls() -> int:
    verifier = bank_api.bank_verifier()
    return verifier.session.get_adapter(verifier.url).app.calls


@pytest.fixture
def ctx(app):
    with app.test_request_context("/"):
        yield app


def test_registers_a_verified_citizen(ctx):
    user = register_account(DEMO_CITIZEN.new_account("demo2026", DEFAULT_PASSWORD), actor="demo")
    assert user.real_name_verified and user.real_name_verified_at and user.phone_verified
    assert user.card_last4 == DEMO_CITIZEN.card_number[-4:]
    box = pii.cipher()
    assert box.decrypt("phone", user.phone_enc) == DEMO_CITIZEN.phone
    assert box.decrypt("card", user.card_enc) == DEMO_CITIZEN.card_number
    assert user.phone_hash == box.lookup_hash("phone", DEMO_CITIZEN.phone)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "register")).one()
    assert (event.outcome, event.actor, event.subject, event.details) == (
        "success", "demo", user.sub, {"channel": "cli", "bank": "CCB"})


def test_values_are_stored_in_canonical_form(ctx):
    demo = DEMO_CITIZEN.new_account("canon2026", DEFAULT_PASSWORD)
    demo.phone = "+86 " + demo.phone
    demo.card_number = " ".join(demo.card_number[i:i + 4] for i in range(0, 19, 4))
    demo.gender = demo.birthdate = None  # taken from the ID number
    user = register_account(demo)
    assert pii.cipher().decrypt("phone", user.phone_enc) == DEMO_CITIZEN.phone
    assert pii.cipher().decrypt("card", user.card_enc) == DEMO_CITIZEN.card_number
    assert (user.gender, user.birthdate) == ("M", DEMO_CITIZEN.birthdate)


@pytest.mark.parametrize("key, changes, error", [
    ("demo", {"name": "王晓明"}, BankIdentityMismatch),
    ("old_phone", {"phone": OLD_PHONE_NOW}, BankPhoneMismatch),
    ("credit", {}, BankCardNotDebit),
    ("inactive", {}, BankCardInactive),
    ("demo", {"id_number": "440304199003072137"}, IdNumberChecksum),
    ("demo", {"card_number": "6217009722818662012"}, CardNumberChecksum),
])
def test_failures_save_nothing_and_are_audited(ctx, key, changes, error):
    account = CITIZENS[key].new_account("failing2026", DEFAULT_PASSWORD)
    for field, value in changes.items():
        setattr(account, field, value)
    with pytest.raises(error):
        register_account(account, actor="cli-user")
    assert count_users() == 0
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "register")).one()
    assert event.outcome == "failure" and event.details["reason"]
    dump = repr(event.details) + repr(event.actor)
    for secret in (account.id_number, account.phone, account.card_number, account.name):
        assert secret not in dump


def test_bank_and_card_are_required(ctx):
    account = DEMO_CITIZEN.new_account("nobank2026", DEFAULT_PASSWORD)
    account.bank_code = None
    with pytest.raises(InvalidField, match="请选择银行"):
        register_account(account)


def test_taken_username_or_document_costs_no_bank_query(ctx, make_user):
    make_user(username="Taken2026")
    make_user(username="holder2026", id_number=CITIZENS["lina"].id_number)
    before = sandbox_calls()
    with pytest.raises(UsernameTaken):
        register_account(DEMO_CITIZEN.new_account("taken2026", DEFAULT_PASSWORD))
    with pytest.raises(DocumentTaken):
        register_account(CITIZENS["lina"].new_account("lina2026", DEFAULT_PASSWORD))
    assert sandbox_calls() == before


def test_cli_users_create_goes_through_the_bank_check(runner, app):
    demo = DEMO_CITIZEN

    def args(username, name=demo.name):
        return ["users", "create", "--username", username, "--password", DEFAULT_PASSWORD, "--name", name,
                "--id-number", demo.id_number, "--phone", demo.phone, "--bank", demo.bank_code,
                "--card-number", demo.card_number]

    refused = runner.invoke(args=args("cliuser1", name="王晓明"))
    assert refused.exit_code == 1
    assert "refused: 人员姓名或证件类型或证件号与银行登记不匹配" in refused.output
    created = runner.invoke(args=args("cliuser1"))
    assert created.exit_code == 0, created.output
    assert "created cliuser1" in created.output
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.real_name_verified and user.birthdate == demo.birthdate and user.gender == "M"
    again = runner.invoke(args=args("cliuser2"))
    assert again.exit_code == 1 and "refused: 证件已被使用" in again.output


def test_parallel_registrations_of_one_username_one_wins(keys_dir, tmp_path):
    """Both pass the uniqueness check while the (slow) bank answers; the database's unique
    constraint decides and the loser gets 用户名已被使用, with nothing half-saved."""
    sandbox = BankSandbox(load_records(), "race-secret", latency=0.5)
    with serve(sandbox, free_port()) as url:
        # two bank calls for one document at once, so that both reach the database (one per
        # citizen is the default: the second would be refused before the bank)
        overrides = dict(BANK_URL=url, BANK_SECRET="race-secret", BANK_MAX_CONCURRENT_PER_CITIZEN=2)
        if not TEST_DATABASE_URL:
            overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'race.sqlite'}"
        app = make_app(keys_dir, **overrides)
        try:
            _race(app, [("Racer2026", "demo"), ("racer2026", "lina")], UsernameTaken)
            with app.app_context():
                db.session.execute(db.delete(AuditEvent))
                db.session.execute(db.delete(User))
                db.session.commit()
            _race(app, [("samedoc1", "demo"), ("samedoc2", "demo")], DocumentTaken)
        finally:
            clean_external_db(app)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def _race(app, entrants, loser_error):
    results: dict[str, object] = {}
    barrier = threading.Barrier(len(entrants))

    def run(username, key):
        with app.test_request_context("/"):
            barrier.wait()
            try:
                results[username] = register_account(CITIZENS[key].new_account(username, DEFAULT_PASSWORD)).username
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                results[username] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=entrant) for entrant in entrants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    outcomes = sorted(results.values(), key=lambda r: isinstance(r, Exception))
    assert isinstance(outcomes[0], str), outcomes
    assert isinstance(outcomes[1], loser_error), outcomes
    with app.app_context():
        assert count_users() == 1
