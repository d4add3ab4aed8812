"""The daily quota holds under concurrency: several transactions (as several daemon
instances on one PostgreSQL would run them) accepting at once never spend more than it."""
from __future__ import annotations

import threading

from sqlalchemy import text
from twisted.internet.task import Clock

from sms.door.accept import DoorAccept
from sms.door.clients import Client, add_client
from sms.door.config import DoorConfig
from sms.door.filters import WordList
from sms.outbox.outbox import Outbox
from sms.outbox.testing import split_encode
from sms.templates import TemplateSet
from storage.db import Database
from tests.support.outbox import make_config, noon

DEPOSIT = {"template": "deposit_credited",
           "params": {"account": "12345678", "date": "2026-11-26", "amount": "100",
                      "balance": "2000"}}


def test_quota_is_never_overspent_by_concurrent_transactions(pg_url):
    """8 threads, each its own transaction of 10 messages, against a quota of 25: exactly
    25 accepted, the rest refused quota_exceeded, the counter at 25."""
    clock = Clock()
    clock.advance(noon())
    db = Database(pg_url, None, 8)
    db.create_all()
    templates = TemplateSet({"demo": "示例公积金"})
    box = Outbox(db, clock, make_config(), encode=split_encode, templates=templates)
    config = DoorConfig(duplicate_window=0)
    door = DoorAccept(box, templates, WordList.load(config.banned_words), config, split_encode)
    client = Client("busy", "demo", "DOOR_BUSY", "busy", daily_quota=25,
                    rate_per_second=10_000)
    db.run_sync(add_client, client, "test", clock.seconds())
    results, start = [], threading.Barrier(8)

    def push(t: int) -> None:
        items = [{"to": f"139{t:04d}{i:04d}", **DEPOSIT} for i in range(10)]
        start.wait()
        results.extend(db.run_sync(door.accept_sync, client, items, clock.seconds()))

    threads = [threading.Thread(target=push, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [r.status for r in results]
    reasons = {r.reason for r in results if r.status == "refused"}
    with db.engine.connect() as conn:
        used = conn.execute(text("SELECT n FROM door_counter WHERE bucket LIKE 'd:%'")).scalar()
    db.engine.dispose()
    assert len(results) == 80 and statuses.count("accepted") == 25
    assert reasons == {"quota_exceeded"} and used == 25
