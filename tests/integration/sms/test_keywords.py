"""MO keywords: balances only to the registered mobile, TD/DY switch alerts, help otherwise."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from core_client.testing import FakeCore
from sms.keywords import KeywordHandler, notify_balance, parse_keyword
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.tables import SmsMessage, SmsMo
from sms.templates import TemplateSet
from tests.support.outbox import make_config, noon, result

STRANGER = "13711112222"


@dataclass
class Mo:
    source: str
    destination: str
    text: str
    smsc: str = "local"
    received_at: float = 0.0


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(f"sqlite:///{tmp_path / 'k.db'}", None, 1)
    db.create_all()
    keywords = {"demo": {"YE": "balance", "CX": "balance", "DKYE": "loan",
                         "TD": "unsubscribe", "DY": "subscribe"}}
    config = make_config(keywords=keywords)
    box = Outbox(db, clock, config, encode=split_encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    core = FakeCore("demo", persons=20)
    handler = KeywordHandler(db, box, {"demo": core}, config, clock)
    yield db, box, core, handler
    db.engine.dispose()


def registered(core):
    account = next(iter(core._persons))
    return account, result(Deferred.fromCoroutine(core.registered_mobile(account)))


def replies(db):
    with db.sessions() as s:
        return [(r.template, r.destination, r.text) for r in s.execute(
            select(SmsMessage.template, SmsMessage.destination, SmsMessage.text)
            .order_by(SmsMessage.id))]


def outcome(db):
    with db.sessions() as s:
        return [r[0] for r in s.execute(select(SmsMo.outcome).order_by(SmsMo.id))]


def test_parse_keyword_accepts_case_and_separators():
    """'ye#123' and 'YE 123' both give keyword YE and argument 123."""
    assert parse_keyword(" ye#123 ") == ("YE", "123")
    assert parse_keyword("YE 123") == ("YE", "123")
    assert parse_keyword("dkye") == ("DKYE", None)


def test_balance_answered_to_the_registered_mobile(env):
    """YE from the registered mobile gets the balance reply, to that mobile only."""
    db, box, core, handler = env
    account, mobile = registered(core)
    result(handler.on_mo(Mo(mobile, "12329", "ye")))
    [(template, dest, text)] = replies(db)
    assert template == "balance_reply" and dest == mobile
    assert "余额" in text and outcome(db) == ["balance"]


def test_other_mobile_gets_a_refusal_that_reveals_nothing(env):
    """YE#account from a mobile that is not the account's gets the same refusal as no account."""
    db, box, core, handler = env
    account, mobile = registered(core)
    result(handler.on_mo(Mo(STRANGER, "12329", f"YE#{account}")))
    result(handler.on_mo(Mo(STRANGER, "12329", "CX")))
    texts = replies(db)
    assert [t for t, _, _ in texts] == ["refusal_reply", "refusal_reply"]
    assert texts[0][2] == texts[1][2]
    assert account[-4:] not in texts[0][2] and "余额" not in texts[0][2]
    assert outcome(db) == ["refused", "refused"]


def test_td_opts_out_and_dy_opts_back_in(env):
    """TD puts the sender on the opt-out list for alerts; DY removes it."""
    db, box, core, handler = env
    result(handler.on_mo(Mo(STRANGER, "12329", "td")))
    assert result(box.is_opted_out("demo", STRANGER))
    result(handler.on_mo(Mo(STRANGER, "12329", "DY")))
    assert not result(box.is_opted_out("demo", STRANGER))
    assert [t for t, _, _ in replies(db)] == ["unsubscribed_reply", "subscribed_reply"]


def test_anything_else_gets_help_with_the_configured_keywords(env):
    """An unknown word is answered with help listing this center's keywords."""
    db, box, core, handler = env
    result(handler.on_mo(Mo(STRANGER, "12329", "hello")))
    [(template, _, text)] = replies(db)
    assert template == "help_reply" and "YE" in text and "TD" in text
    assert outcome(db) == ["help"]


def test_loan_balance_or_no_loan(env):
    """DKYE answers the loan balance, or that there is no loan."""
    db, box, core, handler = env
    account, mobile = registered(core)
    result(handler.on_mo(Mo(mobile, "12329", "DKYE")))
    [(template, _, _)] = replies(db)
    assert template in ("loan_balance_reply", "no_loan_reply")


def test_notify_balance_goes_to_registered_mobile(env):
    """The IVR seam sends the balance reply to the core's registered mobile."""
    db, box, core, handler = env
    account, mobile = registered(core)
    result(Deferred.fromCoroutine(notify_balance(box, {"demo": core}, "demo", account, "ivr:1")))
    [(template, dest, _)] = replies(db)
    assert template == "balance_reply" and dest == mobile
