"""Account alerts: one APScheduler job per center turns the core's event journal into SMS.

Each run reads ``events_since(cursor)`` in pages, looks up each account's
registered mobile, and hands the page to the outbox, which renders, accepts and
moves the cursor in one transaction. The idempotency key is the event's cursor,
so a page replayed after a crash is deduplicated: every alert is sent exactly
once. Opted-out mobiles are skipped by the outbox. A repayment-due event becomes
a reminder held until ``reminder_days`` before its due date at ``reminder_time``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from core_client.interface import AccountNotFound, AccountEvent, CoreError
from sms.outbox import Accepted, Draft, OutboxError

log = Logger(namespace="hotline.sms.alerts")

REPAYMENT_DUE = {"hpf_deduct": "repayment_due_hpf", "hpf_insufficient":
                 "repayment_due_insufficient", "bank_debit": "repayment_due_bank"}
CHANGED_ITEMS = {"mobile": "预留手机号", "base": "缴存基数", "status": "账户状态"}


class UnknownEvent(Exception):
    """An event kind (or repayment method) this platform has no template for."""


@dataclass
class RunReport:
    center: str
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: dict = field(default_factory=dict)  # reason -> count
    cursor: int = 0


def event_draft(center: str, event: AccountEvent, mobile: str, *, reminder_days: int,
                reminder_time: tuple[int, int], tz: ZoneInfo) -> Draft:
    """The alert an event becomes (a pure function, pinned by tests)."""
    f = event.fields
    date = event.occurred_at.date().isoformat()
    key = f"ev:{event.cursor}"
    kind = event.kind
    if kind == "deposit_credited":
        return Draft("deposit_credited", {"account": event.account_no, "date": date,
                                          "amount": f["amount"], "balance": f["balance"]},
                     mobile, key)
    if kind == "withdrawal":
        return Draft("withdrawal", {"account": event.account_no, "date": date,
                                    "reason": f["reason"], "amount": f["amount"],
                                    "balance": f["balance"]}, mobile, key)
    if kind == "interest_credited":
        return Draft("interest_credited", {"account": event.account_no, "date": date,
                                           "amount": f["interest"], "balance": f["balance"]},
                     mobile, key)
    if kind == "loan_disbursed":
        return Draft("loan_disbursed", {"loan": f["loan_tail"], "amount": f["amount"],
                                        "date": date, "term_months": f["term_months"],
                                        "monthly_repayment": f["monthly_repayment"]},
                     mobile, key)
    if kind == "loan_settled":
        return Draft("loan_settled", {"loan": f["loan_tail"],
                                      "date": f.get("settled_on", date)}, mobile, key)
    if kind == "repayment_posted":
        return Draft("repayment_posted", {
            "loan": f["loan_tail"], "date": date, "principal": f["principal"],
            "interest": f["interest"], "penalty": f["penalty"],
            "overdue_periods": f["overdue_periods"], "loan_balance": f["loan_balance"]},
            mobile, key)
    if kind == "account_changed":
        return Draft("account_changed", {"account": event.account_no, "date": date,
                                         "item": CHANGED_ITEMS.get(f.get("what"), "信息")},
                     mobile, key)
    if kind == "repayment_due":
        template = REPAYMENT_DUE.get(f.get("method"))
        if template is None:
            raise UnknownEvent(f"repayment method {f.get('method')!r}")
        due = dt.date.fromisoformat(f["due_date"])
        remind = dt.datetime.combine(due - dt.timedelta(days=reminder_days),
                                     dt.time(*reminder_time), tz)
        end = dt.datetime.combine(due, dt.time(23, 59), tz)
        return Draft(template, {"loan": f["loan_tail"], "amount": f["amount"],
                                "due_date": f["due_date"]}, mobile, key,
                     not_before=remind.timestamp(), valid_until=end.timestamp())
    raise UnknownEvent(kind)


class AlertJob:
    """The per-center job: drain the journal from the stored cursor, page by page."""

    def __init__(self, center: str, core, outbox, config):
        self.center, self.core, self.outbox, self.config = center, core, outbox, config
        self.tz = ZoneInfo(config.timezone)
        self._running: Deferred | None = None
        self.last_report: RunReport | None = None

    def __call__(self) -> Deferred:
        """The APScheduler entry point: a run already in progress is not doubled."""
        if self._running is not None:
            return self._running
        self._running = Deferred.fromCoroutine(self.run_once())
        self._running.addErrback(self._failed)
        self._running.addBoth(self._finished)
        return self._running

    def _failed(self, failure):
        failure.trap(CoreError)
        log.warn("alerts for {center} paused: {why}", center=self.center,
                 why=failure.getErrorMessage())

    def _finished(self, result):
        self._running = None
        return result

    async def run_once(self, max_events: int | None = None) -> RunReport:
        report = RunReport(self.center)
        cursor = await self.outbox.alert_cursor(self.center)
        mobiles: dict[str, str | None] = {}
        while max_events is None or report.events < max_events:
            events, next_cursor = await self.core.events_since(cursor, self.config.alerts_batch)
            if not events:
                break
            await self._lookup_mobiles(events, mobiles)
            drafts = []
            for e in events:
                mobile = mobiles.get(e.account_no)
                if mobile is None:
                    report.skipped["no mobile"] = report.skipped.get("no mobile", 0) + 1
                    continue
                try:
                    drafts.append(event_draft(
                        self.center, e, mobile, reminder_days=self.config.reminder_days,
                        reminder_time=self.config.reminder_time, tz=self.tz))
                except (UnknownEvent, KeyError) as exc:
                    reason = f"unknown {type(exc).__name__}"
                    report.skipped[reason] = report.skipped.get(reason, 0) + 1
            results = await self.outbox.accept_drafts(self.center, drafts, next_cursor)
            for r in results:
                if isinstance(r, Accepted):
                    if r.duplicate:
                        report.duplicates += 1
                    else:
                        report.accepted += 1
                elif isinstance(r, OutboxError):
                    reason = type(r).__name__
                    report.skipped[reason] = report.skipped.get(reason, 0) + 1
            report.events += len(events)
            cursor = next_cursor
            if len(mobiles) > 100_000:
                mobiles.clear()
        report.cursor = cursor
        self.last_report = report
        if report.events:
            log.info("alerts for {center}: {n} events, {a} accepted, {d} duplicates, "
                     "skipped {s}", center=self.center, n=report.events, a=report.accepted,
                     d=report.duplicates, s=report.skipped)
        return report

    async def _lookup_mobiles(self, events: list[AccountEvent], cache: dict) -> None:
        wanted = sorted({e.account_no for e in events} - set(cache))
        for i in range(0, len(wanted), 64):
            chunk = wanted[i:i + 64]
            results = await DeferredList(
                [Deferred.fromCoroutine(self.core.registered_mobile(a)) for a in chunk],
                consumeErrors=True)
            for account, (ok, value) in zip(chunk, results):
                if ok:
                    cache[account] = value
                elif value.check(AccountNotFound):
                    cache[account] = None
                else:
                    value.raiseException()


def schedule_alerts(scheduler, jobs: dict[str, AlertJob], interval: float) -> None:
    """One interval job per center on the daemon's TwistedScheduler."""
    for center, job in jobs.items():
        scheduler.add_job(job, "interval", seconds=interval, id=f"sms-alerts-{center}",
                          max_instances=1, coalesce=True, replace_existing=True)
