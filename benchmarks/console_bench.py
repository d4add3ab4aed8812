"""``hotline bench console``: a province's year in the report rollups, a day's raw calls and
messages, and how long each console page takes on PostgreSQL.

The generator writes what the console reads: 12 months of per-day rollups for 14
centers at the published provincial volumes (about 36 million messages and 1.3
million calls a year, split over templates and carriers), key presses per menu item,
and today's raw rows (a year's messages divided by 365, the calls likewise), since the
dashboard and the search read today's rows. Each page is then fetched in memory
(StubTreq over the console resource, its database work run inline) and timed.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

CENTERS = [f"c{i:02d}" for i in range(1, 15)]
TEMPLATES = ["deposit_credited", "repayment_due", "repayment_posted", "verification_code",
             "withdrawal", "interest_credited", "loan_disbursed", "account_changed"]
CARRIERS = ["cmcc", "unicom", "telecom"]
# The SMS door's sending systems per center, and the share of what each pushes that its
# filters refuse, by reason (the published month: most refusals are one center's duplicates).
DOOR_CLIENTS = ["portal", "loan"]
REFUSED = {"duplicate": 0.05, "invalid_number": 0.004, "template_not_enabled": 0.002,
           "bad_params": 0.002, "illegal_keyword": 0.0005, "opted_out": 0.001}
KEYS = [("main", k) for k in "01235"] + [("deposit", k) for k in "123450"] + \
       [("loan", k) for k in "150"] + [("language", k) for k in "12"]
PAGES = {
    "dashboard (14 centers, today)": "/",
    "report calls by month, year": "/reports?kind=calls&by=month&first={y0}&last={y1}",
    "report calls by day, year, CSV": "/reports?kind=calls&by=day&first={y0}&last={y1}&format=csv",
    "report calls province by month, XLSX":
        "/reports?kind=calls&by=month&province=1&first={y0}&last={y1}&format=xlsx",
    "report SMS by month x template x carrier, year":
        "/reports?kind=sms&by=month&detail=1&first={y0}&last={y1}",
    "report key presses, year": "/reports?kind=keys&first={y0}&last={y1}",
    "report SMS filtered by reason, by month x client x template, year":
        "/reports?kind=filtered&by=month&detail=1&first={y0}&last={y1}",
    "SMS search, today (100 newest)": "/sms",
    "call search, today (100 newest)": "/calls",
    "audit log": "/audit",
}


def register_bench(bench) -> None:
    p = bench.add_parser("console", help="console pages over a province's year on PostgreSQL")
    p.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway server)")
    p.add_argument("--messages-per-year", type=int, default=36_000_000)
    p.add_argument("--calls-per-year", type=int, default=1_300_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/console.json")
    p.set_defaults(func=main)


def generate(db, today: dt.date, messages: int, calls: int, zone: str) -> dict:
    """Fill the rollups for the year before ``today`` and today's raw rows."""
    from sqlalchemy import insert, text

    from console.tables import RollupCalls, RollupKeys, RollupSms
    from ivr.tables import IvrCall
    from sms.door.tables import DoorTally
    from sms.outbox.sql import M

    rnd = random.Random(12329)
    days = [today - dt.timedelta(days=i) for i in range(365)]
    per_day_calls = calls / 365 / len(CENTERS)
    per_day_sms = messages / 365 / len(CENTERS) / len(TEMPLATES) / len(CARRIERS)
    calls_rows, sms_rows, key_rows, tally_rows = [], [], [], []
    for day in days:
        # mid-month deposits and late-month repayments peak, as the published months do
        peak = 1.4 if day.day in range(10, 16) or day.day >= 25 else 0.85
        for center in CENTERS:
            n = int(per_day_calls * peak * rnd.uniform(0.7, 1.3))
            ivr, transferred = int(n * 0.42), int(n * 0.45)
            abandoned = n - ivr - transferred
            lost = n // 1000
            calls_rows.append(dict(day=day.isoformat(), center=center, calls=n, ivr_handled=ivr,
                                   transferred=transferred, abandoned=abandoned - lost,
                                   failed=0, lost=lost, fallback=0,
                                   agent_offered=int(transferred / 0.91),
                                   agent_answered=transferred, timed=n - lost,
                                   seconds=n * 95.0, survey_1=int(n * .3), survey_2=int(n * .05),
                                   survey_3=int(n * .002)))
            for node, key in KEYS:
                key_rows.append(dict(day=day.isoformat(), center=center, node=node, key=key,
                                     count=int(n * rnd.uniform(0.05, 0.6))))
            for template in TEMPLATES:
                for carrier in CARRIERS:
                    m = int(per_day_sms * peak * rnd.uniform(0.5, 1.5))
                    delivered = int(m * 0.975)
                    sms_rows.append(dict(day=day.isoformat(), center=center, template=template,
                                         carrier=carrier, pushed=m, sent=m, delivered=delivered,
                                         failed=m - delivered - m // 500, expired=m // 500))
                for client in DOOR_CLIENTS:
                    pushed = int(per_day_sms * len(CARRIERS) * peak * rnd.uniform(0.5, 1.5))
                    # the one center whose systems push the same message again and again
                    dup = 3.0 if center == CENTERS[0] else 1.0
                    tally_rows.append(dict(center=center, client=client, template=template,
                                           day=day.isoformat(), what="pushed", n=pushed))
                    tally_rows.extend(
                        dict(center=center, client=client, template=template,
                             day=day.isoformat(), what=reason,
                             n=int(pushed * share * (dup if reason == "duplicate" else 1)))
                        for reason, share in REFUSED.items())
    start = dt.datetime.combine(today, dt.time(), ZoneInfo(zone)).timestamp()
    raw_calls = [dict(instance="bench", center=rnd.choice(CENTERS), uniqueid=f"b{i}",
                      caller="025****1234", dnid="12329", language="zh",
                      started_at=start + rnd.uniform(0, 43200), path="language zh main",
                      keys="", identified=0, served=1, outcome="ivr_handled")
                 for i in range(int(calls / 365))]
    for c in raw_calls:
        c["ended_at"] = c["started_at"] + 90
    states = ["delivered"] * 95 + ["failed"] * 2 + ["submitted"] * 2 + ["queued"]

    def message(i):
        created = start + rnd.uniform(0, 43200)
        state = rnd.choice(states)
        return dict(center=rnd.choice(CENTERS), klass="transaction", priority=20,
                    template=rnd.choice(TEMPLATES), params="{}", text="【示例公积金】…",
                    sensitive=0, destination=f"139{i:08d}", idem_key=f"bench-{i}", part_count=1,
                    state=state, attempts=1, possible_duplicates=0, next_attempt_at=created,
                    valid_until=created + 86400, smsc=rnd.choice(CARRIERS),
                    created_at=created, submitted_at=created + 1,
                    final_at=created + 5 if state in ("delivered", "failed") else None)

    def write(session):
        for table, rows in ((RollupCalls.__table__, calls_rows), (RollupKeys.__table__, key_rows),
                            (RollupSms.__table__, sms_rows), (IvrCall.__table__, raw_calls),
                            (DoorTally.__table__, tally_rows)):
            for i in range(0, len(rows), 5000):
                session.execute(insert(table), rows[i:i + 5000])
        today_messages = int(messages / 365)
        for i in range(0, today_messages, 5000):
            session.execute(insert(M), [message(j) for j in range(i, min(i + 5000,
                                                                           today_messages))])
        session.execute(text("ANALYZE"))

    db.run_sync(write)
    return {"rollup_call_rows": len(calls_rows), "rollup_sms_rows": len(sms_rows),
            "rollup_key_rows": len(key_rows), "door_tally_rows": len(tally_rows),
            "raw_calls_today": len(raw_calls),
            "raw_messages_today": int(messages / 365),
            "messages_in_rollups": sum(r["pushed"] for r in sms_rows),
            "calls_in_rollups": sum(r["calls"] for r in calls_rows)}


def main(args) -> int:
    from treq.testing import StubTreq
    from twisted.internet.task import Clock

    import console.config
    import ivr.config
    import prompts.config
    from common.config import load
    from console import accounts
    from console.reports_page import ReportPages
    from console.search_page import SearchPages
    from console.web import Console
    from sms.outbox.testing import InlineDatabase
    from storage.migrate import upgrade

    server = None
    url = args.url
    if url is None:
        from sandbox.postgres import PostgresServer

        server = PostgresServer.start()
        url = server.url()
    tmp = Path(tempfile.mkdtemp(prefix="hotline-console-bench-"))
    try:
        ini = tmp / "bench.ini"
        ini.write_text(f"[daemon]\nstate_dir = {tmp}\n[database]\nurl = {url}\n" + "".join(
            f"[center:{c}]\nname = 第{c[1:]}市住房公积金管理中心\nsignature = 公积金{c[1:]}\n"
            for c in CENTERS), encoding="utf-8")
        config = load(ini, {"ivr": ivr.config, "prompts": prompts.config,
                            "console": console.config}, secrets=False, only_these_rooms=True)
        upgrade(url)
        clock = Clock()
        clock.advance(time.time())
        db = InlineDatabase(url, clock)
        today = dt.datetime.fromtimestamp(clock.seconds(), ZoneInfo("Asia/Shanghai")).date()
        t0 = time.monotonic()
        sizes = generate(db, today, args.messages_per_year, args.calls_per_year,
                         "Asia/Shanghai")
        generated_s = time.monotonic() - t0
        print(f"generated in {generated_s:.0f} s: {sizes}")
        db.run_sync(accounts.add, "bench", "province", None, "bench-password-1", 0.0, "bench",
                    CENTERS)
        site = Console(config, db, clock)
        ReportPages(site).mount()
        SearchPages(site).mount()
        stub = StubTreq(site)
        cookie = _login(stub, site)
        y0, y1 = (today - dt.timedelta(days=364)).isoformat(), today.isoformat()
        results = {}
        for name, path in PAGES.items():
            times = []
            for _ in range(args.repeat):
                start = time.monotonic()
                code = _get(stub, path.format(y0=y0, y1=y1), cookie)
                times.append(time.monotonic() - start)
                assert code == 200, (name, code)
            results[name] = round(statistics.median(times), 3)
            print(f"{name:<52} {results[name]:.3f} s (median of {args.repeat})")
        out = {"database": "postgresql", "centers": len(CENTERS), "days": 365, **sizes,
               "generate_seconds": round(generated_s, 1), "page_seconds": results}
        Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        db.engine.dispose()
        return 0 if max(results.values()) < 1.0 else 1
    finally:
        if server is not None:
            server.stop(remove=True)


def _login(stub, site) -> str:
    d = stub.post("http://console/login", data={"username": "bench",
                                                "password": "bench-password-1"},
                  allow_redirects=False)
    stub.flush()
    box = []
    d.addCallback(box.append)
    header = box[0].headers.getRawHeaders(b"set-cookie")[0].decode()
    return header.split(";")[0]


def _get(stub, path: str, cookie: str) -> int:
    d = stub.get("http://console" + path, headers={"cookie": cookie})
    stub.flush()
    box = []
    d.addCallback(lambda r: r.content().addCallback(lambda _body: box.append(r.code)))
    stub.flush()
    return box[0]
