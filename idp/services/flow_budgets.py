"""The budgets of one flow (registration, recovery, 手机号已停用?, 变更用户信息), each one setting of
``idp/config.py`` and one error the citizen sees, all in this one place.

Each is a ``KeyedLimit`` keyed by the flow id and taken *before* the work it guards, so parallel
requests of one flow cannot slip past it (thirty parallel answers to the security questions
against a budget of five: five are evaluated).  Work that could not be done at all (an SMS that
was not sent, a bank platform that did not answer) gives its unit back.

The messages name the flow the citizen is in ("本次注册…，请稍后重新注册"): the flow passes its
own wording (``task``, ``again``) when it takes from a budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TooManyAttempts, UserError
from .limits import KeyedLimit


class _Spent(UserError):
    status = 429


class TooManySmsInFlow(UserError):
    message = "{task}获取短信验证码的次数过多，请稍后{again}"
    status = 429


class TooManyBankChecks(UserError):
    message = "银行核验次数过多，请稍后{again}"
    status = 429


class TooManyRegistryChecks(UserError):
    message = "单位登记信息核验次数过多，请稍后{again}"
    status = 429


class TooManyFailuresInFlow(UserError):
    """The flow's last allowed proof failed (or a parallel request took it): the flow ends."""

    message = "验证失败次数过多，请重新开始"
    status = 429


class TooManyDocumentChecks(UserError):
    message = "证件号核验次数过多，请返回上一步重新输入验证码后再试"
    status = 429
    field = "id_number"


@dataclass(frozen=True)
class Wording:
    """How a flow names itself in a budget message."""

    task: str  # "本次注册"
    again: str  # "重新注册"


@dataclass(frozen=True)
class FlowBudget:
    setting: str
    error: type[UserError]

    @property
    def limit(self) -> KeyedLimit:
        return KeyedLimit(self.setting, _Spent, namespace=f"flow-budget:{self.setting.lower()}")

    @property
    def amount(self) -> int:
        return self.limit.amount

    def take(self, *key: str, wording: Wording | None = None) -> None:
        """Spend one unit of ``key``'s budget or raise the budget's error."""
        try:
            self.limit.take(*key)
        except _Spent:
            raise self.exceeded(wording) from None

    def give_back(self, *key: str) -> None:
        self.limit.give_back(*key)

    def used(self, *key: str) -> int:
        return self.limit.used(*key)

    def exceeded(self, wording: Wording | None = None) -> UserError:
        words = {"task": wording.task, "again": wording.again} if wording else {}
        return self.error(self.error.message.format(**words) if words else None)


SMS_PER_FLOW = FlowBudget("FLOW_SMS_LIMIT", TooManySmsInFlow)
BANK_CHECKS_PER_FLOW = FlowBudget("FLOW_BANK_CHECK_LIMIT", TooManyBankChecks)
REGISTRY_CHECKS_PER_FLOW = FlowBudget("FLOW_REGISTRY_CHECK_LIMIT", TooManyRegistryChecks)
FAILURES_PER_FLOW = FlowBudget("FLOW_FAILURE_LIMIT", TooManyFailuresInFlow)
DOCUMENT_CHECKS_PER_CAPTCHA = FlowBudget("DOCUMENT_CHECKS_PER_CAPTCHA", TooManyDocumentChecks)
DOCUMENT_CHECKS_PER_IP = FlowBudget("DOCUMENT_CHECK_IP_LIMIT", TooManyAttempts)  # per client IP, not per flow
