"""Alerts: each core event becomes exactly one SMS, the cursor moves with it, opt-outs hold."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from core_client.interface import AccountEvent
from core_client.testing import FakeCore
from sms.alerts import AlertJob, UnknownEvent, event_draft
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.tables import SmsAlertCursor, SmsMessage
from sms.templates import TemplateSet
from tests.support.outbox import make_config, noon, result

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(f"sqlite:///{tmp_path / 'a.db'}", None, 1)
    db.create_all()
    config = make_config(alerts_batch=7)
    box = Outbox(db, clock, config, encode=split_encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    core = FakeCore("demo", persons=60)
    yield db, box, core, AlertJob("demo", core, box, config)
    db.engine.dispose()


def run(job):
    return result(Deferred.fromCoroutine(job.run_once()))


def messages(db):
    with db.sessions() as s:
        return s.execute(select(func.count()).select_from(SmsMessage)).scalar()


def test_every_event_enqueued_once_and_cursor_stored(env):
    """A run drains the journal page by page; a second run finds nothing new."""
    db, box, core, job = env
    report = run(job)
    assert report.events == len(core.events) > 7
    dues = sum(1 for e in core.events if e.kind == "repayment_due")
    assert report.dues == dues > 0  # kept for the reminder job, not sent now
    assert report.accepted == messages(db) == (len(core.events) - dues
                                               - sum(report.skipped.values()))
    assert result(box.alert_cursor("demo")) == core.events[-1].cursor
    again = run(job)
    assert again.events == 0 and messages(db) == report.accepted


def test_replay_after_lost_cursor_creates_no_duplicates(env):
    """If the cursor is lost (crash before it moved), replayed events are deduplicated."""
    db, box, core, job = env
    first = run(job)
    db.run_sync(lambda s: s.execute(delete(SmsAlertCursor.__table__)))
    replay = run(job)
    assert replay.accepted == 0 and replay.duplicates == first.accepted
    assert messages(db) == first.accepted


def test_opted_out_mobile_gets_no_alerts(env):
    """A mobile that sent TD is skipped by the alert run."""
    db, box, core, job = env
    account = core.events[0].account_no
    mobile = result(Deferred.fromCoroutine(core.registered_mobile(account)))
    result(box.set_opt_out("demo", mobile, True))
    report = run(job)
    assert report.skipped.get("OptedOut", 0) >= 1
    with db.sessions() as s:
        assert s.execute(select(func.count()).where(
            SmsMessage.destination == mobile)).scalar() == 0


def test_unknown_event_kind_is_refused():
    """A kind with no template raises UnknownEvent (the run counts it as skipped)."""
    event = AccountEvent(1, "lottery_won", "1", dt.datetime(2026, 1, 1), {})
    with pytest.raises(UnknownEvent):
        event_draft("demo", event, "13900000001")
