"""The ivr_identity table on SQLite (from the models and from the migration) and PostgreSQL:
an identified caller's account lives exactly as long as the call's open record."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from common.config import load
from core_client.interface import Account
from core_client.testing import FakeCore
from daemon import ROOMS
from ivr.identities import Identities, recall
from ivr.records import CallRecord, CallRecords
from ivr.service import make_service
from ivr.tables import IvrIdentity
from storage.cluster import Membership
from tests.support.databases import SyncDatabase
from tests.support.ivr_fakes import TWO_CENTERS_INI

ACCOUNT = Account("demo", "120000000001", "", "", "normal")  # synthetic
TTL = 3600.0


def started(records, uniqueid: str, clock, instance="hotline-1") -> CallRecord:
    record = CallRecord.start(instance=instance, center="demo", uniqueid=uniqueid,
                              caller_id="13800138000", dnid="12329", language="zh",
                              now=clock.seconds())
    Deferred.fromCoroutine(records.open(record))
    return record


def kept(db) -> dict[str, str]:
    return db.run_sync(lambda s: {r.uniqueid: r.account_no
                                  for r in s.scalars(select(IvrIdentity))})


def remembered(identities, record) -> list:
    out: list = []
    identities.remember(record, ACCOUNT).addCallback(out.append)
    return out


def setup(db):
    clock = Clock()
    clock.advance(1_000_000)
    sync = SyncDatabase(db)
    return clock, CallRecords(sync, clock), Identities(sync, clock, TTL)


def test_kept_while_the_record_is_open_and_gone_when_it_closes(db):
    """The account is kept for the open call, recalled for its center only, and deleted
    in the transaction that closes the call's record; other calls' identities stay."""
    clock, records, identities = setup(db)
    record, other = started(records, "1.1", clock), started(records, "1.2", clock)
    assert remembered(identities, record) == [True] and remembered(identities, other) == [True]
    now = clock.seconds()
    assert db.run_sync(recall, "1.1", "demo", now) == ACCOUNT.account_no
    assert db.run_sync(recall, "1.1", "north", now) is None
    Deferred.fromCoroutine(records.close(record, "ivr_handled", 1))
    assert kept(db) == {"1.2": ACCOUNT.account_no}
    assert db.run_sync(recall, "1.1", "demo", now) is None


def test_a_write_the_calls_end_overtook_keeps_nothing(db):
    """A write that arrives after the call's record closed keeps no account."""
    clock, records, identities = setup(db)
    record = started(records, "2.1", clock)
    Deferred.fromCoroutine(records.close(record, "abandoned", 0))
    assert remembered(identities, record) == [False] and kept(db) == {}


def test_identified_again_replaces_the_row(db):
    """An adopter that had to identify the caller again keeps the new identity in the
    same row (one per call)."""
    clock, records, identities = setup(db)
    record = started(records, "3.1", clock)
    remembered(identities, record)
    clock.advance(10)
    remembered(identities, record)
    rows = db.run_sync(lambda s: [(r.uniqueid, r.identified_at)
                                  for r in s.scalars(select(IvrIdentity))])
    assert rows == [("3.1", clock.seconds())]


def test_an_expired_identity_is_not_recalled_and_is_swept(db):
    """Past its expiry an identity is no identity, and the next identification or
    settlement on any daemon deletes it."""
    clock, records, identities = setup(db)
    old = started(records, "4.1", clock)
    remembered(identities, old)
    clock.advance(TTL)
    assert db.run_sync(recall, "4.1", "demo", clock.seconds()) is None
    remembered(identities, started(records, "4.2", clock))
    assert set(kept(db)) == {"4.2"}
    clock.advance(TTL)
    out: list = []
    Deferred.fromCoroutine(records.settle("hotline-2", [], set())).addCallback(out.append)
    assert out == [(0, 0)] and kept(db) == {}


def test_orphans_closed_at_start_up_take_their_identities(db):
    """A daemon back from a crash closes the records its calls left open (lost) and their
    identities with them; a call still up keeps its own."""
    clock, records, identities = setup(db)
    for uniqueid in ("5.1", "5.2"):
        remembered(identities, started(records, uniqueid, clock))
    out: list = []
    Deferred.fromCoroutine(records.settle("hotline-1", [], {"5.2"})).addCallback(out.append)
    assert out == [(1, 0)] and set(kept(db)) == {"5.2"}


def test_the_migration_makes_the_models_table(db):
    """ivr_identity from the migration has the model's columns, key and expiry index."""
    inspector = sa.inspect(db.engine)
    columns = {c["name"]: c["nullable"] for c in inspector.get_columns("ivr_identity")}
    assert columns == {c.name: c.nullable for c in IvrIdentity.__table__.columns}
    assert inspector.get_pk_constraint("ivr_identity")["constrained_columns"] == ["uniqueid"]
    assert [i["column_names"] for i in inspector.get_indexes("ivr_identity")] == [["expires_at"]]


def test_the_configured_lifetime_expires_the_identity(db, tmp_path):
    """The daemon's IVR keeps identities for ``[ivr] identity_minutes``: one kept at t is
    recalled a second before t + 15 min and no longer at it."""
    path = tmp_path / "hotline.ini"
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path).replace(
        "enabled = no", "enabled = yes\nsecret = s3cret\nendpoint = tcp:host=127.0.0.1:port=1")
        + "[ivr]\nidentity_minutes = 15\n", "utf-8")
    clock = Clock()
    clock.advance(1_000_000)
    sync = SyncDatabase(db)
    service = make_service(load(path, ROOMS), clock, sync,
                           cores={"demo": FakeCore("demo"), "north": FakeCore("north")},
                           cluster=Membership(sync, clock, "hotline-1"))
    record = started(CallRecords(sync, clock), "6.1", clock)
    assert remembered(service.handler.identities, record) == [True]
    clock.advance(15 * 60 - 1)
    assert db.run_sync(recall, "6.1", "demo", clock.seconds()) == ACCOUNT.account_no
    clock.advance(1)
    assert db.run_sync(recall, "6.1", "demo", clock.seconds()) is None
