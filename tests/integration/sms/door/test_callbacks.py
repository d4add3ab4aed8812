"""Receipt callbacks: one per final message, signed, retried with backoff until a 2xx,
dead-lettered after the last attempt; a receiver failing its first answers still gets every
receipt, and by its id exactly once."""
from __future__ import annotations

import json

from treq.testing import StubTreq
from twisted.web.resource import Resource

from sms.door.auth import sign
from sms.door.callbacks import CallbackPusher, dead_letters
from sms.door.config import DoorConfig
from sms.outbox.records import SubmitResult
from tests.support.door import ENV, SECRET, msg, outcome


class Receiver(Resource):
    """A city system's callback URL: fails its first ``fail`` answers with 503."""

    isLeaf = True

    def __init__(self, fail: int):
        super().__init__()
        self.fail, self.seen, self.kept, self.bad_signatures = fail, 0, {}, 0

    def render_POST(self, request):
        self.seen += 1
        body = request.content.read()
        h = {k: request.getHeader(k).decode() for k in
             (b"x-timestamp", b"x-nonce", b"x-signature")}
        if sign(SECRET.encode(), "POST", "/hook", h[b"x-timestamp"], h[b"x-nonce"],
                body) != h[b"x-signature"]:
            self.bad_signatures += 1
        if self.fail > 0:
            self.fail -= 1
            request.setResponseCode(503)
            return b"busy"
        event = json.loads(body)
        self.kept.setdefault(event["id"], []).append(event)
        return b"ok"


def deliver_all(door, n: int) -> list[int]:
    """Accept n messages, submit them and deliver a DLR for each (the outbox's own path)."""
    ids = []
    for i in range(n):
        ids.append(door.request("POST", "", msg(to=f"1391234{i:04d}"))[1]["message_id"])
    claimed = door.outbox.claim(100)
    claimed = [c for c in outcome(claimed)]
    for c in claimed:
        for part_id in c.part_ids:
            door.outbox.record(SubmitResult(part_id, c.message_id, "ok", f"S{part_id}", "fake"))
    for c in claimed:
        for part_id in c.part_ids:
            door.outbox.receipt(f"S{part_id}", "fake", "DELIVRD", None, None)
    return ids


def pusher(door, receiver, **config):
    root = Resource()
    root.putChild(b"hook", receiver)
    cfg = DoorConfig(callback_retry_base=1.0, callback_retry_max=8.0, **config)
    return CallbackPusher(door.db, door.directory, StubTreq(root), door.clock, cfg, ENV)


def run(door, p, seconds: float, step: float = 0.5):
    for _ in range(int(seconds / step)):
        p.tick()
        p.http.flush()
        door.clock.advance(step)


def test_failing_receiver_gets_every_receipt_once_by_id(door):
    """Five receipts, a receiver answering 503 to its first seven POSTs: after the retries
    each receipt id was kept exactly once, every request correctly signed."""
    door.add(callback_url="http://city.local/hook")
    ids = deliver_all(door, 5)
    receiver = Receiver(fail=7)
    p = pusher(door, receiver)
    run(door, p, 60)
    assert sorted(receiver.kept) == sorted(f"r:{i}" for i in ids)
    assert all(len(v) == 1 and v[0]["state"] == "delivered" for v in receiver.kept.values())
    assert receiver.seen == 12 and receiver.bad_signatures == 0


def test_per_part_callbacks_on_request(door):
    """A client with callback_parts gets the rolled-up receipt and one per part."""
    door.add(callback_url="http://city.local/hook", callback_parts=True)
    [mid] = deliver_all(door, 1)
    receiver = Receiver(fail=0)
    run(door, pusher(door, receiver), 2)
    assert sorted(receiver.kept) == [f"p:{mid}:0", f"r:{mid}"]


def test_dead_letter_after_the_last_attempt(door):
    """A receiver that never answers 2xx: the event is dead after max attempts, and listed."""
    door.add(callback_url="http://city.local/hook")
    deliver_all(door, 1)
    receiver = Receiver(fail=10_000)
    run(door, pusher(door, receiver, callback_max_attempts=3), 60)
    assert receiver.seen == 3
    [dead] = door.db.run_sync(dead_letters, "wuhan-loans")
    assert dead["attempts"] == 3 and dead["last_error"] == "HTTP 503"


def test_acknowledged_events_are_purged_after_a_week(door):
    """An acknowledged receipt is deleted a week later (it holds personal data); the pass
    that purges runs at most once an hour."""
    from sqlalchemy import func, select

    from sms.door.tables import DoorEvent

    door.add(callback_url="http://city.local/hook")
    deliver_all(door, 1)
    p = pusher(door, Receiver(fail=0))
    run(door, p, 2)

    def events():
        with door.db.sessions() as s:
            return s.execute(select(func.count()).select_from(DoorEvent)).scalar()

    assert events() == 1
    door.clock.advance(7 * 86400 + 3600)
    run(door, p, 1)
    assert events() == 0


def test_a_replayed_sweep_records_each_event_once(door):
    """Events go in as one statement for the whole sweep; an event whose id is already
    recorded (a sweep replayed after its messages were marked unnotified) is skipped, the
    others of the same sweep are recorded."""
    from sqlalchemy import select, update

    from sms.door.callbacks import sweep
    from sms.door.tables import DoorEvent, DoorMessage

    door.add(callback_url="http://city.local/hook")
    ids = deliver_all(door, 3)
    assert door.db.run_sync(sweep, door.directory.by_name, door.clock.seconds()) == 3
    unnotify = update(DoorMessage.__table__).values(notified=None)
    door.db.run_sync(lambda s: s.execute(unnotify))
    door.db.run_sync(lambda s: s.execute(DoorEvent.__table__.delete().where(
        DoorEvent.__table__.c.dedup_id == f"r:{ids[1]}")))
    door.db.run_sync(sweep, door.directory.by_name, door.clock.seconds())
    with door.db.sessions() as s:
        kept = s.execute(select(DoorEvent.dedup_id).order_by(DoorEvent.id)).scalars().all()
    assert sorted(kept) == sorted(f"r:{i}" for i in ids)
