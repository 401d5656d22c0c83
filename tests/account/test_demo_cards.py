"""The sandbox's second cards make the demo's success paths work: 王小明 moves to his second card
and his new reserved phone through 变更用户信息 (the bank check and an SMS code to the new phone)."""

from __future__ import annotations

from idp.cli.demo import second_cards

from ..recovery.conftest import CITIZENS, make_citizen_account, outbox_code
from .test_edit import edit, signed_in, sms_step, snapshot

DEMO = CITIZENS["demo"]


def test_the_demo_citizen_changes_to_his_second_card_and_new_phone(app, client):
    [card] = [r for r in second_cards() if r.name == DEMO.name]
    user = make_citizen_account(app, DEMO, "wangxm")
    signed_in(app, client, user)
    response = edit(client, bank_code=card.bank, card_number=card.card_number, phone=card.phone)
    assert response.headers["Location"] == "/account/edit/sms"  # the bank matched the new card and phone
    sms_step(client, "send_sms")
    done = sms_step(client, sms_code=outbox_code(client, card.phone))
    assert done.headers["Location"] == "/account/"
    after = snapshot(app, user.id)
    assert (after["bank"], after["card"], after["phone"]) == (card.bank, card.card_number, card.phone)
