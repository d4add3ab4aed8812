"""Repayment-due reminders: a daily cron job per center, ``reminder_days`` before each due date.

The alert run stores each ``repayment_due`` event of the core's journal as a row
(one per account and due date, in the transaction that moves the alert cursor).
Each day at ``reminder_time`` in the center's zone, and once when the daemon
starts (to catch up on a day it was down), the job takes the rows due within
``reminder_days`` that have no reminder yet, looks up the registered mobile at
that moment, and accepts one reminder per row, marking the rows in the same
transaction: each repayment gets its reminder exactly once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from twisted.logger import Logger

from core_client.interface import AccountEvent
from sms.jobs import CenterJob
from sms.mobiles import lookup_mobiles
from sms.outbox.records import Accepted, Draft, Due, OutboxError

log = Logger(namespace="hotline.sms.reminders")

REPAYMENT_DUE = {"hpf_deduct": "repayment_due_hpf", "hpf_insufficient":
                 "repayment_due_insufficient", "bank_debit": "repayment_due_bank"}
KEEP_DAYS = 30  # rows this long past their due date are dropped


class UnknownMethod(ValueError):
    """A repayment method this platform has no reminder template for."""


def due_from_event(event: AccountEvent) -> Due:
    """The stored form of a ``repayment_due`` event (a pure function, pinned by tests)."""
    f = event.fields
    if f.get("method") not in REPAYMENT_DUE:
        raise UnknownMethod(f"repayment method {f.get('method')!r}")
    due_date = dt.date.fromisoformat(f["due_date"]).isoformat()
    return Due(event.account_no, f["loan_tail"], f["amount"], due_date, f["method"])


def reminder_draft(due: Due, mobile: str, tz: ZoneInfo) -> Draft:
    """The reminder SMS for one due repayment; worthless after the due date ends."""
    end = dt.datetime.combine(dt.date.fromisoformat(due.due_date), dt.time(23, 59), tz)
    return Draft(REPAYMENT_DUE[due.method], {"loan": due.loan_tail, "amount": due.amount,
                                             "due_date": due.due_date},
                 mobile, f"due:{due.account_no}:{due.due_date}", valid_until=end.timestamp())


@dataclass
class ReminderReport:
    center: str
    due: int = 0
    accepted: int = 0
    skipped: dict = field(default_factory=dict)  # reason -> count


class ReminderJob(CenterJob):
    """The per-center daily job."""

    what = "repayment reminders"

    def __init__(self, center: str, core, outbox, config, clock):
        super().__init__(center, core, outbox, config)
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)

    async def run_once(self) -> ReminderReport:
        report = ReminderReport(self.center)
        today = dt.datetime.fromtimestamp(self.clock.seconds(), self.tz).date()
        last = today + dt.timedelta(days=self.config.reminder_days)
        rows = await self.outbox.open_dues(self.center, today.isoformat(), last.isoformat(),
                                           (today - dt.timedelta(days=KEEP_DAYS)).isoformat())
        report.due = len(rows)
        mobiles: dict[str, str | None] = {}
        await lookup_mobiles(self.core, [due.account_no for _, due in rows], mobiles)
        drafts, done = [], []
        for row_id, due in rows:
            done.append(row_id)
            mobile = mobiles.get(due.account_no)
            if mobile is None:
                report.skipped["no mobile"] = report.skipped.get("no mobile", 0) + 1
                continue
            drafts.append(reminder_draft(due, mobile, self.tz))
        for r in await self.outbox.accept_reminders(self.center, drafts, done):
            if isinstance(r, Accepted):
                report.accepted += 0 if r.duplicate else 1
            elif isinstance(r, OutboxError):
                reason = type(r).__name__
                report.skipped[reason] = report.skipped.get(reason, 0) + 1
        self.last_report = report
        if rows:
            log.info("repayment reminders for {center}: {n} due by {last}, {a} accepted, "
                     "skipped {s}", center=self.center, n=len(rows), last=last.isoformat(),
                     a=report.accepted, s=report.skipped)
        return report


def schedule_reminders(scheduler, jobs: dict[str, ReminderJob], at: tuple[int, int],
                       timezone: str) -> None:
    """A cron job per center at ``at`` (hour, minute) in ``timezone``, and one run at start."""
    for center, job in jobs.items():
        scheduler.add_job(job, "cron", hour=at[0], minute=at[1], timezone=ZoneInfo(timezone),
                          id=f"sms-reminders-{center}", max_instances=1, coalesce=True,
                          replace_existing=True)
        scheduler.add_job(job, id=f"sms-reminders-{center}-at-start", replace_existing=True)
