"""Account alerts: one APScheduler job per center turns the core's event journal into SMS.

Each run reads ``events_since(cursor)`` in pages, looks up each account's
registered mobile, and hands the page to the outbox, which renders, accepts and
moves the cursor in one transaction. The idempotency key is the event's cursor,
so a page replayed after a crash is deduplicated: every alert is sent exactly
once. Opted-out mobiles are skipped by the outbox. A repayment-due event is
stored in that transaction for the daily reminder job (sms.reminders).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from twisted.logger import Logger

from core_client.interface import AccountEvent
from sms.jobs import CenterJob
from sms.mobiles import lookup_mobiles
from sms.outbox.records import Accepted, Draft, OutboxError
from sms.reminders import UnknownMethod, due_from_event

log = Logger(namespace="hotline.sms.alerts")

CHANGED_ITEMS = {"mobile": "预留手机号", "base": "缴存基数", "status": "账户状态"}


class UnknownEvent(Exception):
    """An event kind (or repayment method) this platform has no template for."""


@dataclass
class RunReport:
    center: str
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    dues: int = 0  # repayment-due events stored for the reminder job
    skipped: dict = field(default_factory=dict)  # reason -> count
    cursor: int = 0


def event_draft(center: str, event: AccountEvent, mobile: str) -> Draft:
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
    raise UnknownEvent(kind)


class AlertJob(CenterJob):
    """The per-center job: drain the journal from the stored cursor, page by page."""

    what = "alerts"

    async def run_once(self, max_events: int | None = None) -> RunReport:
        report = RunReport(self.center)
        cursor = await self.outbox.alert_cursor(self.center)
        mobiles: dict[str, str | None] = {}
        while max_events is None or report.events < max_events:
            events, next_cursor = await self.core.events_since(cursor, self.config.alerts_batch)
            if not events:
                break
            await lookup_mobiles(self.core, [e.account_no for e in events
                                             if e.kind != "repayment_due"], mobiles)
            drafts, dues = [], []
            for e in events:
                if e.kind == "repayment_due":
                    try:
                        dues.append(due_from_event(e))
                    except (UnknownMethod, KeyError, ValueError) as exc:
                        reason = f"unknown {type(exc).__name__}"
                        report.skipped[reason] = report.skipped.get(reason, 0) + 1
                    continue
                mobile = mobiles.get(e.account_no)
                if mobile is None:
                    report.skipped["no mobile"] = report.skipped.get("no mobile", 0) + 1
                    continue
                try:
                    drafts.append(event_draft(self.center, e, mobile))
                except (UnknownEvent, KeyError) as exc:
                    reason = f"unknown {type(exc).__name__}"
                    report.skipped[reason] = report.skipped.get(reason, 0) + 1
            results = await self.outbox.accept_drafts(self.center, drafts, next_cursor, dues)
            report.dues += len(dues)
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
                     "{r} repayments due stored, skipped {s}", center=self.center,
                     n=report.events, a=report.accepted, d=report.duplicates, r=report.dues,
                     s=report.skipped)
        return report



def schedule_alerts(scheduler, jobs: dict[str, AlertJob], interval: float) -> None:
    """One interval job per center on the daemon's TwistedScheduler."""
    for center, job in jobs.items():
        scheduler.add_job(job, "interval", seconds=interval, id=f"sms-alerts-{center}",
                          max_instances=1, coalesce=True, replace_existing=True)
