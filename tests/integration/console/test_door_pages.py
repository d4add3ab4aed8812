"""The SMS door in the console: its filtered messages by reason in the reports and on the
dashboard (from the door's own tallies), and its clients managed in the browser's forms,
in memory (StubTreq, an inline database)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from twisted.internet.task import Clock

from console.rollup import Period, filtered_report
from sms.door.accept import DoorAccept
from sms.door.clients import Client
from sms.door.config import DoorConfig
from sms.door.filters import WordList
from sms.door.stats import collect
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.templates import TemplateSet
from tests.integration.console.test_web import Browser, env  # noqa: F401  (the fixture)
from tests.support.outbox import TZ, make_config

PARAMS = {"account": "1234", "date": "2026-11-30", "amount": "10", "balance": "20"}
MOBILES = ["139" + f"{n:08d}" for n in range(1, 6)]  # synthetic, built so none sits whole here


def door_items() -> list[dict]:
    """One of each: accepted, a bad number, a template not enabled, bad parameters, a
    duplicate of the first, and one over the client's daily quota of 2."""
    first = {"to": MOBILES[0], "template": "deposit_credited", "params": PARAMS}
    return [first,
            {"to": "12345", "template": "deposit_credited", "params": PARAMS},
            {"to": MOBILES[1], "template": "loan_settled", "params": {}},
            {"to": MOBILES[2], "template": "deposit_credited", "params": {"account": "1"}},
            dict(first),
            {"to": MOBILES[3], "template": "deposit_credited", "params": PARAMS},
            {"to": MOBILES[4], "template": "deposit_credited", "params": PARAMS}]


EXPECTED = {"invalid_number": 1, "template_not_enabled": 1, "bad_params": 1, "duplicate": 1,
            "quota_exceeded": 1}


def send_through_the_door(db, now: float, centers=("nj",)) -> None:
    """The door's own accepting transaction, so the tallies are what it really counts."""
    templates = TemplateSet({"nj": "南京公积金", "sz": "苏州公积金"})
    clock = Clock()
    clock.advance(now)
    box = Outbox(db, clock, make_config(), encode=split_encode, templates=templates)
    config = DoorConfig(duplicate_window=3600)
    accept = DoorAccept(box, templates, WordList.load(config.banned_words), config,
                        split_encode)
    for center in centers:
        client = Client(name=f"{center}-loans", center=center, secret_env="DOOR_TEST",
                        system_id=f"{center}loans", templates=("deposit_credited",),
                        daily_quota=2, rate_per_second=100)
        db.run_sync(accept.accept_sync, client, door_items(), now)


def local_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, TZ).date().isoformat()


@pytest.fixture
def db(tmp_path):
    db = InlineDatabase(f"sqlite:///{tmp_path / 'd.db'}", Clock())
    db.create_all()
    yield db
    db.engine.dispose()


def test_filtered_report_equals_the_doors_own_statistics(db):
    """Each item the door refused is in the report under its reason, per center, client and
    template and per center alone, equal to ``hotline sms stats --door`` (sms.door.stats)."""
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=TZ).timestamp()
    send_through_the_door(db, now, ("nj", "sz"))
    day = local_day(now)
    detail = db.run_sync(filtered_report, ["nj"], Period("day", day, day), True)
    door = [r for r in db.run_sync(collect, day, "Asia/Shanghai") if r["center"] == "nj"]
    assert {(r["client"], r["template"]) for r in detail} == {
        (r["client"], r["template"]) for r in door}
    for row in detail:
        twin = next(r for r in door if (r["client"], r["template"]) == (row["client"],
                                                                        row["template"]))
        assert row["pushed"] == twin["pushed"]
        assert {k: row[k] for k in twin["filtered"]} == twin["filtered"]
        assert row["filtered"] == sum(twin["filtered"].values())
    [center] = db.run_sync(filtered_report, ["nj"], Period("month", day, day))
    assert (center["period"], center["center"], center["pushed"]) == (day[:7], "nj", 7)
    assert {k: center[k] for k in EXPECTED} == EXPECTED and center["filtered"] == 5


def test_reports_and_dashboard_show_filtered_sms_by_reason(env):
    """The report of kind ``filtered`` (and its CSV) and today's dashboard show the door's
    refusals by reason for the user's own center only."""
    site, db, clock = env
    send_through_the_door(db, clock.seconds(), ("nj", "sz"))
    day = local_day(clock.seconds())
    b = Browser(site)
    b.login("njadmin")
    code, _, body = b.get(f"/reports?kind=filtered&first={day}&last={day}&detail=1"
                          "&format=csv")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert code == 200 and {r["中心 center"] for r in rows} == {"nj"}
    by_reason = {k: sum(int(r[f"{k_zh} {k}".strip()]) for r in rows)
                 for k, k_zh in (("duplicate", "重复"), ("quota", "超出日配额"))}
    assert by_reason == {"duplicate": 1, "quota": 1}
    code, _, body = b.get(f"/reports?kind=filtered&first={day}&last={day}")
    assert code == 200 and "号头不正确 invalid number" in body
    code, _, body = b.get("/")
    assert 'id="filtered-nj"' in body and 'id="filtered-sz"' not in body
    assert '<dd data-reason="template_not_enabled">1</dd>' in body
    assert '<td class="filtered">5</td>' in body
