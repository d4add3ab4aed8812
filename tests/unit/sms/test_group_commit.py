"""The outbox's group commit in memory: a fake database whose transactions the test ends."""
from __future__ import annotations

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.task import Clock

from sms.outbox.group_commit import GroupCommit


class HeldDatabase:
    """``run(fn, items)`` records the batch and fires when the test calls ``commit``."""

    def __init__(self):
        self.batches: list[list] = []
        self._open: list[tuple[Deferred, list]] = []

    def run(self, fn, items):
        self.batches.append(list(items))
        d: Deferred = Deferred()
        self._open.append((d, items))
        return d

    def commit(self) -> None:
        d, items = self._open.pop(0)
        d.callback([f"ok:{item}" for item in items])

    def fail(self, error: Exception) -> None:
        d, _items = self._open.pop(0)
        d.errback(error)


def test_without_turns_the_first_item_starts_its_transaction_alone():
    """Without ``turns``: the first add starts a transaction at once; what comes while it runs
    waits for the next one, and each Deferred fires only after its own commit."""
    db = HeldDatabase()
    lane = GroupCommit(db, None, DeferredLock())
    first, second, third = lane.add(1), lane.add(2), lane.add(3)
    assert db.batches == [[1]]
    got: list = []
    for d in (first, second, third):
        d.addCallback(got.append)
    db.commit()
    assert got == ["ok:1"] and db.batches == [[1], [2, 3]]
    db.commit()
    assert got == ["ok:1", "ok:2", "ok:3"]


def test_with_turns_one_reactor_turn_goes_in_one_transaction():
    """With ``turns`` (the reactor), the items added in one reactor turn (one socket read of submits) start
    one transaction together at the end of the turn; items added while it runs go in the
    next, which starts as soon as the first commits."""
    db, clock = HeldDatabase(), Clock()
    lane = GroupCommit(db, None, DeferredLock(), turns=clock)
    answers = [lane.add(i) for i in range(5)]
    assert db.batches == []
    clock.advance(0)
    assert db.batches == [[0, 1, 2, 3, 4]]
    later = lane.add(5)
    clock.advance(0)
    assert db.batches == [[0, 1, 2, 3, 4]]  # one transaction at a time
    db.commit()
    assert [a.result for a in answers] == [f"ok:{i}" for i in range(5)]
    assert db.batches[1] == [5] and not later.called
    db.commit()
    assert later.result == "ok:5"


def test_max_batch_splits_a_turn():
    """A turn with more items than ``max_batch`` is committed in several transactions."""
    db, clock = HeldDatabase(), Clock()
    lane = GroupCommit(db, None, DeferredLock(), max_batch=2, turns=clock)
    for i in range(5):
        lane.add(i)
    clock.advance(0)
    db.commit()
    db.commit()
    assert db.batches == [[0, 1], [2, 3], [4]]


def test_quiet_items_join_the_turns_transaction_and_are_heard_once_committed():
    """Items added with ``add_quiet`` (a burst's submit results) go in the same end-of-turn
    transaction as the others and are told to ``on_committed`` once, after the commit."""
    db, clock, heard = HeldDatabase(), Clock(), []
    lane = GroupCommit(db, None, DeferredLock(), on_committed=heard.append, turns=clock)
    answer = lane.add(1)
    lane.add_quiet("a", "b")
    clock.advance(0)
    assert db.batches == [[1, "a", "b"]] and heard == []
    db.commit()
    assert answer.result == "ok:1" and heard == [["a", "b"]]



def test_each_committed_transaction_is_told_once_with_its_results_after_its_deferreds():
    """``on_results`` hears a transaction's results in one call, after every item's Deferred
    fired (the accept lane wakes the dispatcher once per batch, not once per message), and
    hears nothing of a transaction that failed."""
    db, clock, heard, order = HeldDatabase(), Clock(), [], []
    lane = GroupCommit(db, None, DeferredLock(), turns=clock,
                       on_results=lambda results: (heard.append(results), order.append("batch")))
    for item in (1, 2):
        lane.add(item).addCallback(order.append)
    clock.advance(0)
    db.commit()
    assert heard == [["ok:1", "ok:2"]] and order == ["ok:1", "ok:2", "batch"]
    lane.add(3).addErrback(lambda f: order.append("failed"))
    clock.advance(0)
    db.fail(RuntimeError("disk full"))
    assert heard == [["ok:1", "ok:2"]] and order[-1] == "failed"


def test_a_held_receipt_rides_in_the_next_transaction_another_item_starts():
    """An item added with ``add_held`` (a receipt while a window's results are on their way)
    starts no transaction of its own: it goes in the one the next results start, so no
    receipts-only transaction overlaps the next window's answers."""
    db, clock = HeldDatabase(), Clock()
    lane = GroupCommit(db, None, DeferredLock(), turns=clock, hold=0.05)
    receipt = lane.add_held("dlr")
    clock.advance(0)
    clock.advance(0.02)
    assert db.batches == [] and not receipt.called
    lane.add_quiet("r1")
    clock.advance(0)
    assert db.batches == [["dlr", "r1"]]
    db.commit()
    assert receipt.result == "ok:dlr"
    clock.advance(1)
    assert len(db.batches) == 1  # the held item's own deadline went with it


def test_a_held_receipt_waits_at_most_hold():
    """With no other item coming, a held item starts its own transaction ``hold`` seconds
    after it was added."""
    db, clock = HeldDatabase(), Clock()
    lane = GroupCommit(db, None, DeferredLock(), turns=clock, hold=0.05)
    receipt = lane.add_held("dlr")
    clock.advance(0.049)
    assert db.batches == []
    clock.advance(0.001)
    assert db.batches == [["dlr"]]
    db.commit()
    assert receipt.result == "ok:dlr"


def test_a_held_receipt_added_while_a_transaction_runs_goes_in_the_next():
    """A transaction that ends starts the next with everything pending, held items too:
    that moment is after the burst its results followed, not during a read."""
    db, clock = HeldDatabase(), Clock()
    lane = GroupCommit(db, None, DeferredLock(), turns=clock, hold=0.05)
    lane.add_quiet("r1")
    clock.advance(0)
    receipt = lane.add_held("dlr")
    db.commit()
    assert db.batches == [["r1"], ["dlr"]]
    db.commit()
    assert receipt.result == "ok:dlr"


def test_without_turns_add_held_is_add():
    """Tests driving the outbox without ``turns`` (batch_turns off) see no holding."""
    db = HeldDatabase()
    lane = GroupCommit(db, None, DeferredLock(), hold=0.05)
    lane.add_held("dlr")
    assert db.batches == [["dlr"]]
