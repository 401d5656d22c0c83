"""The keyed limit: counted before the work, atomically, and given back when the work did not
happen."""

from __future__ import annotations

import threading

import pytest

from idp.errors import UserError
from idp.services.limits import KeyedLimit


class Spent(UserError):
    message = "最多{amount}次，{window}后再试"
    status = 429


@pytest.fixture
def limit(app):
    app.config["TEST_BUDGET"] = "3 per 2 hours"
    return KeyedLimit("TEST_BUDGET", Spent)


def test_take_until_spent_then_the_error_states_the_setting(app, limit):
    with app.app_context():
        for _ in range(3):
            limit.take("k")
        with pytest.raises(Spent) as refused:
            limit.take("k")
        assert refused.value.message == "最多3次，2小时后再试"
        limit.take("other-key")  # keys are independent


def test_give_back_returns_one_attempt(app, limit):
    with app.app_context():
        for _ in range(3):
            limit.take("k")
        limit.give_back("k")
        limit.take("k")
        with pytest.raises(Spent):
            limit.take("k")


def test_give_back_never_goes_below_zero(app, limit):
    with app.app_context():
        limit.give_back("fresh")
        assert limit.used("fresh") == 0
        for _ in range(3):
            limit.take("fresh")
        with pytest.raises(Spent):
            limit.take("fresh")


def test_reset_and_used(app, limit):
    with app.app_context():
        limit.take("k")
        limit.take("k")
        assert limit.used("k") == 2
        limit.reset("k")
        assert limit.used("k") == 0 and not limit.spent("k")


def test_parallel_takes_let_exactly_the_budget_through(app, limit):
    passed, refused = [], []
    barrier = threading.Barrier(20)

    def attempt():
        with app.app_context():
            barrier.wait()
            try:
                limit.take("race")
            except Spent:
                refused.append(1)
            else:
                passed.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(passed), len(refused)) == (limit_amount := 3, 20 - limit_amount)


def test_recovery_failures_are_taken_before_the_check(app):
    """Thirty parallel wrong proofs for one name: exactly the daily limit is checked; a check that
    was not a failure (right answer, platform down) gives its unit back."""
    from idp.services import recovery

    limit = app.config["RECOVERY_FAILURE_LIMIT"]
    checked, refused = [], []
    barrier = threading.Barrier(30)

    def attempt():
        with app.app_context():
            barrier.wait()
            try:
                with recovery.proof_attempt("name:racer") as proof:
                    checked.append(1)
                    proof.failed()
            except recovery.TooManyRecoveryFailures as exc:
                refused.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(checked), len(refused)) == (limit, 30 - limit)
    assert refused[0].message == "验证失败次数过多，请24小时后再试"
    with app.app_context():
        with recovery.proof_attempt("name:other"):
            pass  # neither failed: given back
        assert recovery.FAILURES.used("name:other") == 0
        recovery.clear_failures("name:racer")
        assert recovery.FAILURES.used("name:racer") == 0
