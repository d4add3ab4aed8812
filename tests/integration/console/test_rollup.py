"""Report rollups: calls added as their records close, SMS folded as they reach a final
state; day and month reports, province totals, CSV and XLSX equal to the raw rows."""
import csv
import io

import pytest
from sqlalchemy import insert
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from console import rollup
from console.rollup import CallRollup, Period, calls_report, fold_sms, sms_report
from ivr.records import CallRecord, CallRecords
from ivr.stats import summary
from sms.outbox.sql import M
from storage.db import Database

ZONES = {"nj": "Asia/Shanghai", "sz": "Asia/Shanghai"}
DAY1 = 1_780_000_000.0  # 2026-05-29 04:26 in Shanghai
DAY2 = DAY1 + 86400


class Inline:
    def __init__(self, db):
        self.db = db

    def run(self, fn, *args):
        from twisted.internet.defer import succeed

        return succeed(self.db.run_sync(fn, *args))


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'r.db'}", reactor=None, threads=1)
    db.create_all()
    yield db
    db.engine.dispose()


_calls = iter(range(1, 1000))


def close_call(db, center, start, seconds, outcome, survey=None, agent=None):
    n = next(_calls)
    clock = Clock()
    clock.advance(start)
    records = CallRecords(Inline(db), clock, CallRollup(ZONES))
    record = CallRecord.start(instance="i", center=center, uniqueid=f"u{n}",
                              caller_id="02584001234", dnid="12329", language="zh", now=start)
    record.survey = survey
    record.agent = agent
    record.key("main", "1")
    record.key("deposit", "1")
    Deferred.fromCoroutine(records.open(record))
    clock.advance(seconds)
    Deferred.fromCoroutine(records.close(record, outcome, 1))


def test_calls_report_equals_the_call_records(db):
    """Each closing call is added to its day; the day report equals ivr.stats over the raw
    rows, and the month report and province total add the days up."""
    close_call(db, "nj", DAY1, 30, "ivr_handled", survey=1)
    close_call(db, "nj", DAY1 + 60, 90, "transferred", survey=3)
    close_call(db, "nj", DAY1 + 120, 5, "abandoned")
    close_call(db, "sz", DAY2, 40, "ivr_handled", survey=2)
    period = Period("day", "2026-05-01", "2026-05-31")
    rows = db.run_sync(calls_report, ["nj", "sz"], period)
    nj = rows[0]
    stats = db.run_sync(summary, "nj", DAY1 - 3600, DAY1 + 3600)
    assert (nj["period"], nj["center"]) == ("2026-05-29", "nj")
    assert (nj["calls"], nj["ivr_handled"], nj["transferred"], nj["abandoned"]) == (
        stats.calls, stats.ivr_handled, stats.transferred, stats.abandoned)
    assert nj["average_seconds"] == round(stats.average_duration, 1)
    assert nj["satisfaction"] == round(stats.satisfaction, 4) == 0.5
    assert nj["abandon_rate"] == round(1 / 3, 4)
    month = db.run_sync(calls_report, ["nj", "sz"], Period("month", "2026-05-01", "2026-05-31"),
                        False)
    assert [(r["period"], r["center"], r["calls"]) for r in month] == [
        ("2026-05", "全省 province", 4)]
    keys = db.run_sync(rollup.keys_report, ["nj"], period)
    assert [(k["node"], k["key"], k["count"]) for k in keys] == [("deposit", "1", 3),
                                                                 ("main", "1", 3)]


def test_agent_answer_rate_counts_the_queues_answers(db):
    """Callers handed to the agents' queue are counted, and those Asterisk reported an agent
    answering (AgentConnect): the agent answer rate (人工接通率) is one over the other."""
    close_call(db, "nj", DAY1, 90, "transferred", agent="answered")
    close_call(db, "nj", DAY1 + 10, 90, "transferred", agent="answered")
    close_call(db, "nj", DAY1 + 20, 60, "abandoned", agent="abandoned")
    close_call(db, "nj", DAY1 + 30, 60, "transferred", agent="unknown")  # no agent events
    close_call(db, "nj", DAY1 + 40, 20, "ivr_handled")
    [row] = db.run_sync(calls_report, ["nj"], Period("day", "2026-05-29", "2026-05-29"))
    assert (row["calls"], row["transferred"], row["agent_offered"],
            row["agent_answered"]) == (5, 3, 4, 2)
    assert row["agent_answer_rate"] == 0.5 and row["abandon_rate"] == 0.2


def test_lost_and_fallback_calls_count_in_the_abandon_rate(db):
    """Calls settled after the fact (a daemon died mid-call: ``lost``; no daemon took it:
    ``fallback``) are added to the rollup as they are settled, once, so the report's calls
    equal the records and its abandon rate counts them; a lost call whose end is unknown
    does not skew the average duration."""
    from ivr.records import FallbackCall

    close_call(db, "nj", DAY1, 30, "ivr_handled")
    close_call(db, "nj", DAY1 + 5, 50, "abandoned")
    clock = Clock()
    clock.advance(DAY1)
    records = CallRecords(Inline(db), clock, CallRollup(ZONES))
    for uniqueid in ("dead-1", "dead-2"):  # open rows of a daemon that died
        Deferred.fromCoroutine(records.open(CallRecord.start(
            instance="i", center="nj", uniqueid=uniqueid, caller_id="02584001234",
            dnid="12329", language="zh", now=DAY1 + 60)))
    fallbacks = [FallbackCall("dead-1", "i", "nj", DAY1 + 60, DAY1 + 100, "dead", "ivr", "zh",
                              "****1234"),
                 FallbackCall("nobody-1", "i", "nj", DAY1 + 70, DAY1 + 80, "down", "ivr", "zh",
                              "****1234"),
                 # a center this configuration does not know: counted, not a failed settle
                 FallbackCall("nobody-2", "i", "gone", DAY1 + 70, DAY1 + 80, "down", "ivr",
                              "zh", "****1234")]
    out = []
    Deferred.fromCoroutine(records.settle("i", fallbacks, set())).addCallback(out.append)
    assert out == [(2, 2)]
    Deferred.fromCoroutine(records.settle("i", fallbacks, set())).addCallback(out.append)
    assert out[1] == (0, 0)  # settling again adds nothing
    [row] = db.run_sync(calls_report, ["nj"], Period("day", "2026-05-29", "2026-05-29"))
    stats = db.run_sync(summary, "nj", DAY1 - 3600, DAY1 + 3600)
    assert (row["calls"], row["lost"], row["fallback"], row["abandoned"]) == (
        stats.calls, stats.lost, stats.fallback, stats.abandoned) == (5, 2, 1, 1)
    assert row["abandon_rate"] == round(4 / 5, 4)
    assert row["average_seconds"] == round(stats.average_duration, 1) == round(
        (30 + 50 + 40 + 10) / 4, 1)


def _message(center, template, state, created, final, smsc="cmcc", submitted=True):
    return dict(center=center, klass="transaction", priority=20, template=template, params="{}",
                text="x", sensitive=0, destination="13800000000", idem_key=f"{created}{state}",
                part_count=1, state=state, attempts=1, possible_duplicates=0,
                next_attempt_at=created, valid_until=created + 86400, smsc=smsc,
                created_at=created, submitted_at=created + 1 if submitted else None,
                final_at=final)


def test_sms_fold_adds_final_messages_once(db):
    """Messages are folded once they are final (and only once); queued ones wait."""
    rows = [_message("nj", "deposit_credited", "delivered", DAY1, DAY1 + 5),
            _message("nj", "deposit_credited", "failed", DAY1, DAY1 + 6),
            _message("nj", "code", "expired", DAY1, DAY1 + 7, smsc=None, submitted=False),
            _message("nj", "code", "queued", DAY1, None, smsc=None, submitted=False)]
    db.run_sync(lambda s: s.execute(insert(M), rows))
    assert db.run_sync(fold_sms, DAY1 + 100, ZONES) == 3
    assert db.run_sync(fold_sms, DAY1 + 200, ZONES) == 0
    report = db.run_sync(sms_report, ["nj"], Period("day", "2026-05-29", "2026-05-29"))
    assert len(report) == 1
    r = report[0]
    assert (r["pushed"], r["sent"], r["delivered"], r["failed"], r["expired"]) == (3, 2, 1, 1, 1)
    assert r["success_rate"] == 0.5
    detail = db.run_sync(sms_report, ["nj"], Period("day", "2026-05-29", "2026-05-29"), True)
    assert {(d["template"], d["carrier"]) for d in detail} == {
        ("code", ""), ("deposit_credited", "cmcc")}


def test_a_message_final_within_the_lag_waits_for_the_next_fold(db):
    db.run_sync(lambda s: s.execute(insert(M), [
        _message("nj", "t", "delivered", DAY1, DAY1 + 10)]))
    assert db.run_sync(fold_sms, DAY1 + 12, ZONES) == 0  # inside SMS_LAG
    assert db.run_sync(fold_sms, DAY1 + 20, ZONES) == 1


def test_csv_and_xlsx_carry_the_rows():
    rows = [{"period": "2026-05-29", "center": "nj", "calls": 3, "ivr_handled": 1,
             "transferred": 1, "abandoned": 1, "failed": 0, "lost": 0, "fallback": 0,
             "agent_offered": 1, "agent_answered": 1, "agent_answer_rate": 1.0,
             "abandon_rate": 0.3333,
             "average_seconds": 41.7, "satisfaction": None}]
    text = rollup.to_csv(rows, rollup.CALL_COLUMNS).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0][0] == "日期/月份 period" and parsed[1][:3] == ["2026-05-29", "nj", "3"]
    assert parsed[1][-1] == ""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(rollup.to_xlsx(rows, rollup.CALL_COLUMNS, "calls")))
    assert [c.value for c in book.active[2]][:3] == ["2026-05-29", "nj", 3]
