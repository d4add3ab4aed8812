"""Repayment-due reminders: stored once from the journal, sent once N days ahead by a daily job."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from core_client.interface import AccountEvent
from core_client.testing import FakeCore
from sms.outbox.outbox import Outbox
from sms.outbox.records import Due
from sms.outbox.testing import InlineDatabase, split_encode
from sms.reminders import ReminderJob, UnknownMethod, due_from_event, schedule_reminders
from sms.tables import SmsMessage, SmsRepaymentDue
from sms.templates import TemplateSet
from tests.support.outbox import make_config, result

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 9) -> float:
    return dt.datetime(2026, 12, day, hour, 0, tzinfo=TZ).timestamp()


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    clock.advance(at(1))
    db = InlineDatabase(f"sqlite:///{tmp_path / 'r.db'}", None, 1)
    db.create_all()
    config = make_config(reminder_days=3)
    box = Outbox(db, clock, config, encode=split_encode,
                 templates=TemplateSet({"demo": "示例公积金"}))
    core = FakeCore("demo", persons=5)
    account = core.events[0].account_no
    yield db, box, core, clock, ReminderJob("demo", core, box, config, clock), account
    db.engine.dispose()


def store(box, *dues, cursor=1):
    return result(box.accept_drafts("demo", [], cursor, dues))


def run(job):
    return result(Deferred.fromCoroutine(job.run_once()))


def sent(db):
    with db.sessions() as s:
        return list(s.execute(select(SmsMessage.template, SmsMessage.destination,
                                     SmsMessage.valid_until)))


def test_a_due_repayment_is_stored_once_and_reminded_once_n_days_before(env):
    """Replayed, the event adds no row; four days before nothing goes; three days before at
    the job's run one reminder goes to the registered mobile; the next run sends nothing."""
    db, box, core, clock, job, account = env
    due = Due(account, "0123", "3000.00", "2026-12-10", "bank_debit")
    store(box, due)
    store(box, due, cursor=2)
    with db.sessions() as s:
        assert s.execute(select(func.count()).select_from(SmsRepaymentDue)).scalar() == 1
    clock.advance(at(6) - clock.seconds())
    assert run(job).due == 0 and sent(db) == []
    clock.advance(at(7) - clock.seconds())
    report = run(job)
    mobile = result(Deferred.fromCoroutine(core.registered_mobile(account)))
    assert report.accepted == 1
    assert sent(db) == [("repayment_due_bank", mobile,
                         dt.datetime(2026, 12, 10, 23, 59, tzinfo=TZ).timestamp())]
    assert run(job).due == 0 and len(sent(db)) == 1


def test_a_missed_day_is_caught_up_but_never_after_the_due_date(env):
    """Down on the reminder day: the next run still reminds before the due date; a repayment
    already past due gets nothing, and rows a month past due are dropped."""
    db, box, core, clock, job, account = env
    store(box, Due(account, "0123", "3000.00", "2026-12-10", "hpf_deduct"),
          Due(account, "0123", "3000.00", "2026-12-05", "hpf_deduct"),
          Due(account, "0123", "3000.00", "2026-11-01", "hpf_deduct"))
    clock.advance(at(9, hour=2) - clock.seconds())  # at start, before the 09:00 job
    report = run(job)
    assert report.due == 1 and report.accepted == 1
    assert [t for t, _, _ in sent(db)] == ["repayment_due_hpf"]
    with db.sessions() as s:
        assert sorted(s.execute(select(SmsRepaymentDue.due_date)).scalars()) == [
            "2026-12-05", "2026-12-10"]


def test_events_become_dues_and_unknown_methods_are_refused():
    """The stored form keeps what the reminder needs; a method with no template is refused."""
    event = AccountEvent(5, "repayment_due", "110000000001", dt.datetime(2026, 11, 26, 8, 0),
                         {"amount": "3000.00", "due_date": "2026-12-10", "loan_tail": "0123",
                          "method": "bank_debit"})
    assert due_from_event(event) == Due("110000000001", "0123", "3000.00", "2026-12-10",
                                        "bank_debit")
    event.fields["method"] = "cash"
    with pytest.raises(UnknownMethod):
        due_from_event(event)


def test_the_job_is_a_daily_cron_in_the_zone_plus_a_run_at_start():
    """APScheduler gets a cron trigger at reminder_time in the configured zone, and a run now."""
    from apscheduler.schedulers.twisted import TwistedScheduler

    scheduler = TwistedScheduler(reactor=Clock())
    schedule_reminders(scheduler, {"demo": lambda: None}, (9, 30), "Asia/Shanghai")
    jobs = {job.id: job for job in scheduler.get_jobs()}
    cron = jobs["sms-reminders-demo"].trigger
    assert str(cron.timezone) == "Asia/Shanghai"
    assert {f.name: str(f) for f in cron.fields}["hour"] == "9"
    assert {f.name: str(f) for f in cron.fields}["minute"] == "30"
    assert "sms-reminders-demo-at-start" in jobs
