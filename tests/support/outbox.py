"""An outbox on a real database (SQLite, and PostgreSQL where the fixture gives it) with a
Clock, and the builders the SMS tests share."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from twisted.internet.task import Clock

from common.daily_window import DailyWindow
from sms.config import OutboxConfig
from sms.outbox.outbox import Outbox
from sms.outbox.records import EncodedPart, Outgoing
from sms.outbox.testing import InlineDatabase, split_encode
from sms.tables import SmsMessage, SmsPart
from sms.templates import TemplateSet


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The outbox on the embedded default and on the multi-instance database alike."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    return request.getfixturevalue("pg_url")


TZ = ZoneInfo("Asia/Shanghai")
MOBILE = "13900000001"


def make_config(**over) -> OutboxConfig:
    base = dict(
        timezone="Asia/Shanghai",
        validity={"code": 600, "transaction": 172800, "bulk": 259200, "reply": 3600},
        quiet_hours={"code": None, "transaction": DailyWindow(21 * 60, 8 * 60),
                     "bulk": DailyWindow(21 * 60, 8 * 60), "reply": None},
        retry_base=5.0, retry_max=300.0, per_destination_per_hour=20, batch=100,
        max_inflight=0, alerts_interval=10.0, alerts_batch=1000, reminder_days=3,
        reminder_time=(9, 0), mo_routes={}, keywords={"demo": {"YE": "balance"}})
    base.update(over)
    return OutboxConfig(**base)


def noon() -> float:
    return dt.datetime(2026, 11, 26, 12, 0, tzinfo=TZ).timestamp()


@pytest.fixture
def clock():
    c = Clock()
    c.advance(noon())
    return c


@pytest.fixture
def db(db_url):
    d = InlineDatabase(db_url, None, 1)
    d.create_all()
    yield d
    d.engine.dispose()


@pytest.fixture
def outbox(db, clock):
    return Outbox(db, clock, make_config(), encode=split_encode,
                  templates=TemplateSet({"demo": "示例公积金"}))


def msg(key="k1", klass="transaction", dest=MOBILE, parts=1, center="demo") -> Outgoing:
    return Outgoing(center=center, klass=klass, template="t", params={}, text="x",
                    destination=dest, idem_key=key,
                    parts=tuple(EncodedPart(b"p%d" % i, 8, 0) for i in range(parts)))


def result(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred did not fire"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def states(db):
    with db.sessions() as s:
        return {r.id: r.state for r in s.execute(select(SmsMessage.id, SmsMessage.state))}


def part_states(db):
    with db.sessions() as s:
        return [r.state for r in s.execute(select(SmsPart.state).order_by(SmsPart.id))]
