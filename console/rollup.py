"""Report rollups: per-day figures kept current as events happen, so a year's report reads
at most 366 rows per center and never the raw call or message rows.

Calls are added in the transaction that closes their record (``CallRollup``, the
IVR's ``on_closed`` hook). Messages are added when they reach a final state
(delivered, failed, expired): ``fold_sms`` reads the messages finalised since
its mark, a few seconds behind the clock so no transaction still in flight is
skipped, and the daemon runs it every few seconds. Days are local days in each
center's zone. Reports by month add up the days.
"""
from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from console.tables import RollupCalls, RollupKeys, RollupMark, RollupSms
from ivr.agents import ANSWERED
from sms.door.filters import HELD, REASONS
from sms.door.tables import DoorTally
from sms.outbox.sql import M
from sms.outbox.states import DELIVERED, EXPIRED, FAILED

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
SMS_MARK = "sms_final_at"
SMS_LAG = 5.0  # seconds behind the clock: transactions that finalised earlier have committed


def zones(config) -> dict[str, str]:
    """Each center's time zone: its days are local days."""
    return {code: center.timezone for code, center in config.centers.items()}


def local_day(ts: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, zone).date().isoformat()


CALL_COUNTS = ("calls", "ivr_handled", "transferred", "abandoned", "failed", "lost", "fallback",
               "agent_offered", "agent_answered", "timed")


class CallRollup:
    """Adds one closed call to its day's row, inside the transaction that closes it: the
    daemon's own closes and the records settled later as ``lost`` or ``fallback``
    (ivr.records), so every call the hotline took is counted once."""

    def __init__(self, zones: dict[str, str]):
        self.zones = {center: ZoneInfo(zone) for center, zone in zones.items()}

    def __call__(self, session, record, ended_at: float | None, outcome: str) -> None:
        center, started_at, survey = record.center, record.started_at, record.survey
        # A center no longer configured (a fallback line an old dialplan wrote) still counts.
        key = (local_day(started_at, self.zones.get(center, DEFAULT_ZONE)), center)
        row = session.get(RollupCalls, key, with_for_update=True)
        if row is None:
            row = RollupCalls(day=key[0], center=center, seconds=0.0, survey_1=0, survey_2=0,
                              survey_3=0, **dict.fromkeys(CALL_COUNTS, 0))
            session.add(row)
        row.calls += 1
        if outcome in ("ivr_handled", "transferred", "abandoned", "lost", "fallback"):
            setattr(row, outcome, getattr(row, outcome) + 1)
        else:
            row.failed += 1
        if record.agent is not None:  # handed to the agents' queue (ivr.flows.transfer)
            row.agent_offered += 1
            row.agent_answered += int(record.agent == ANSWERED)
        if ended_at is not None:  # a lost call that left no trace has no known duration
            row.timed += 1
            row.seconds += max(0.0, ended_at - started_at)
        if survey in (1, 2, 3):
            setattr(row, f"survey_{survey}", getattr(row, f"survey_{survey}") + 1)
        for (node, digits), n in Counter(record.keys).items():
            press = session.get(RollupKeys, (key[0], center, node, digits), with_for_update=True)
            if press is None:
                press = RollupKeys(day=key[0], center=center, node=node, key=digits, count=0)
                session.add(press)
            press.count += n


def fold_sms(session, now: float, zones: dict[str, str]) -> int:
    """Add the messages finalised since the mark (up to ``now - SMS_LAG``); returns how many."""
    tz = {center: ZoneInfo(zone) for center, zone in zones.items()}
    mark = session.get(RollupMark, SMS_MARK, with_for_update=True)
    if mark is None:
        mark = RollupMark(name=SMS_MARK, value=0.0)
        session.add(mark)
    upto = now - SMS_LAG
    if upto <= mark.value:
        return 0
    rows = session.execute(
        select(M.c.center, M.c.template, M.c.smsc, M.c.created_at, M.c.submitted_at,
               M.c.state)
        .where(M.c.final_at > mark.value, M.c.final_at <= upto,
               M.c.state.in_((DELIVERED, FAILED, EXPIRED)))).all()
    adds: dict[tuple, dict[str, int]] = {}
    for center, template, smsc, created, submitted, state in rows:
        day = local_day(created, tz.get(center, DEFAULT_ZONE))
        entry = adds.setdefault((day, center, template, smsc or ""),
                                dict.fromkeys(("pushed", "sent", DELIVERED, FAILED, EXPIRED), 0))
        entry["pushed"] += 1
        entry["sent"] += int(submitted is not None)
        entry[state] += 1
    for key, add in adds.items():
        row = session.get(RollupSms, key, with_for_update=True)
        if row is None:
            row = RollupSms(day=key[0], center=key[1], template=key[2], carrier=key[3],
                            pushed=0, sent=0, delivered=0, failed=0, expired=0)
            session.add(row)
        for name, n in add.items():
            setattr(row, name, getattr(row, name) + n)
    mark.value = upto
    return len(rows)


# ---- reports ---------------------------------------------------------------------------

CALL_COLUMNS = ("period", "center", "calls", "ivr_handled", "transferred", "abandoned",
                "failed", "lost", "fallback", "agent_offered", "agent_answered",
                "agent_answer_rate", "abandon_rate", "average_seconds", "satisfaction")
KEY_COLUMNS = ("period", "center", "node", "key", "count")
SMS_COLUMNS = ("period", "center", "template", "carrier", "pushed", "sent", "delivered",
               "failed", "expired", "success_rate")
FILTER_COLUMNS = ("period", "center", "client", "template", "pushed", "filtered", *REASONS,
                  HELD)
HEADINGS = {
    "period": "日期/月份 period", "center": "中心 center", "calls": "呼入 calls",
    "ivr_handled": "自助完成 IVR-handled", "transferred": "转人工 transferred",
    "abandoned": "放弃 abandoned", "failed": "失败 failed", "lost": "中断 lost",
    "fallback": "应急转接 fallback only", "agent_offered": "进入排队 queued for agents",
    "agent_answered": "人工接通 agent-answered", "agent_answer_rate": "人工接通率 answer rate",
    "abandon_rate": "呼损率 abandon rate",
    "average_seconds": "平均时长(秒) avg s", "satisfaction": "满意度 satisfaction",
    "template": "模板 template", "carrier": "通道 carrier", "pushed": "推送 pushed",
    "sent": "发送 sent", "delivered": "成功 delivered", "expired": "过期 expired",
    "success_rate": "成功率 success rate", "node": "菜单 menu", "key": "按键 key",
    "count": "次数 presses", "client": "接入方 client", "filtered": "过滤 filtered",
    # the SMS door's filter reasons (sms.door.filters.REASONS)
    "bad_request": "请求错误 bad request", "center_not_allowed": "中心未授权 center not allowed",
    "invalid_number": "号头不正确 invalid number",
    "template_not_enabled": "模板未开通 template not enabled",
    "class_not_allowed": "类别未授权 class not allowed",
    "free_text_not_allowed": "不允许自由文本 free text not allowed",
    "bad_params": "参数错误 bad parameters", "illegal_keyword": "非法关键字 illegal keyword",
    "extension_not_allowed": "扩展号未授权 extension not allowed",
    "duplicate": "重复 duplicate", "opted_out": "已退订 opted out",
    "destination_limited": "号码限频 destination limited",
    "quota_exceeded": "超出日配额 quota", "rate_limited": "超速 rate limited",
    HELD: "静默时段暂缓 held (quiet hours)",
}


@dataclass(frozen=True)
class Period:
    by: str  # day | month
    first: str  # YYYY-MM-DD, inclusive
    last: str  # YYYY-MM-DD, inclusive

    def key(self, column):
        return column if self.by == "day" else func.substr(column, 1, 7)


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def calls_report(session, centers: list[str], period: Period, by_center: bool = True) -> list[dict]:
    """Hotline figures per day or month (per center, or the centers together).

    呼损率 (abandon rate): calls the hotline lost, of all calls: the caller hung up before
    being served or answered, the daemon died (``lost``), or only the dialplan's fallback
    took the call. 人工接通率 (agent answer rate): callers an agent answered, of those sent
    to the agents' queue, as Asterisk's queue reported it."""
    key = period.key(RollupCalls.day).label("period")
    group = [key, RollupCalls.center] if by_center else [key]
    names = (*CALL_COUNTS, "seconds", "survey_1", "survey_2", "survey_3")
    q = (select(*group, *(func.sum(getattr(RollupCalls, n)) for n in names))
         .where(RollupCalls.center.in_(centers), RollupCalls.day >= period.first,
                RollupCalls.day <= period.last)
         .group_by(*group).order_by(*group))
    out = []
    for row in session.execute(q).all():
        head = row[:len(group)]
        f = dict(zip(names, (v or 0 for v in row[len(group):]), strict=True))
        calls = int(f["calls"])
        out.append({"period": head[0], "center": head[1] if by_center else "全省 province",
                    **{n: int(f[n]) for n in CALL_COUNTS if n != "timed"},
                    "agent_answer_rate": _rate(f["agent_answered"], f["agent_offered"]),
                    "abandon_rate": _rate(f["abandoned"] + f["lost"] + f["fallback"], calls),
                    "average_seconds": round(f["seconds"] / f["timed"], 1) if f["timed"]
                    else None,
                    "satisfaction": _rate(f["survey_1"] + f["survey_2"],
                                          f["survey_1"] + f["survey_2"] + f["survey_3"])})
    return out


def keys_report(session, centers: list[str], period: Period) -> list[dict]:
    """Key presses per menu item over the period, per center (the guidelines' 按键统计)."""
    q = (select(RollupKeys.center, RollupKeys.node, RollupKeys.key, func.sum(RollupKeys.count))
         .where(RollupKeys.center.in_(centers), RollupKeys.day >= period.first,
                RollupKeys.day <= period.last)
         .group_by(RollupKeys.center, RollupKeys.node, RollupKeys.key)
         .order_by(RollupKeys.center, RollupKeys.node, RollupKeys.key))
    return [{"period": f"{period.first}..{period.last}", "center": c, "node": n, "key": k,
             "count": int(v)} for c, n, k, v in session.execute(q).all()]


def _hash_the_groups(session) -> None:
    """A detailed report over a year groups several hundred thousand rollup rows into some
    tens of thousands of groups: with PostgreSQL's default 4 MB of work memory it sorts them
    on disk (1.2 s for the door's filter tallies of 14 centers), with 64 MB for this
    transaction it hashes them in memory (0.5 s)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def sms_report(session, centers: list[str], period: Period, detail: bool = False) -> list[dict]:
    """SMS figures per day or month and center; with ``detail`` also by template and carrier."""
    _hash_the_groups(session)
    key = period.key(RollupSms.day).label("period")
    group = [key, RollupSms.center] + ([RollupSms.template, RollupSms.carrier] if detail else [])
    sums = [func.sum(getattr(RollupSms, n)) for n in ("pushed", "sent", "delivered", "failed",
                                                      "expired")]
    q = (select(*group, *sums).where(RollupSms.center.in_(centers),
                                     RollupSms.day >= period.first,
                                     RollupSms.day <= period.last)
         .group_by(*group).order_by(*group))
    out = []
    for row in session.execute(q).all():
        head, figures = row[:len(group)], [int(v or 0) for v in row[len(group):]]
        pushed, sent, delivered, failed, expired = figures
        out.append({"period": head[0], "center": head[1],
                    "template": head[2] if detail else "", "carrier": head[3] if detail else "",
                    "pushed": pushed, "sent": sent, "delivered": delivered, "failed": failed,
                    "expired": expired, "success_rate": _rate(delivered, sent)})
    return out


def filtered_report(session, centers: list[str], period: Period, detail: bool = False
                    ) -> list[dict]:
    """SMS the door refused, by reason, per day or month and center (with ``detail`` also per
    client and template), beside what was pushed and what was held for quiet hours.

    The figures are the door's own tallies (``door_tally``), a rollup the accepting
    transaction adds to as each item is accepted or refused, one row per center, client,
    template, day and reason, so no message row is read here."""
    _hash_the_groups(session)
    t = DoorTally.__table__.c
    key = period.key(t.day).label("period")
    group = [key, t.center] + ([t.client, t.template] if detail else [])
    q = (select(*group, t.what, func.sum(t.n))
         .where(t.center.in_(centers), t.day >= period.first, t.day <= period.last)
         .group_by(*group, t.what).order_by(*group))
    rows: dict[tuple, dict] = {}
    for *head, what, n in session.execute(q).all():
        row = rows.setdefault(tuple(head), {
            "period": head[0], "center": head[1], "client": head[2] if detail else "",
            "template": head[3] if detail else "", "pushed": 0, "filtered": 0,
            **dict.fromkeys(REASONS, 0), HELD: 0})
        if what == "pushed" or what == HELD:
            row[what] += int(n)
        elif what in REASONS:
            row[what] += int(n)
            row["filtered"] += int(n)
    return list(rows.values())


def to_csv(rows: list[dict], columns: tuple[str, ...]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese headings."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([HEADINGS[c] for c in columns])
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict], columns: tuple[str, ...], title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append([HEADINGS[c] for c in columns])
    for row in rows:
        sheet.append([row[c] for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
