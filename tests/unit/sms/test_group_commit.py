"""The outbox's group commit: what goes into one transaction."""
from __future__ import annotations

from twisted.internet.defer import DeferredLock, succeed
from twisted.internet.task import Clock

from sms.outbox.group_commit import GroupCommit


class RecordingDb:
    """Runs each transaction at once and remembers the items of each."""

    def __init__(self):
        self.transactions: list[list] = []

    def run(self, fn, items):
        self.transactions.append(list(items))
        return succeed(fn(None, items))


def test_a_burst_added_in_one_turn_commits_in_one_transaction():
    """With ``turns``, sixteen receipts handled one by one in one reactor turn start one
    transaction at the end of that turn (not the first alone and fifteen after it); each
    Deferred fires after that commit."""
    db, clock = RecordingDb(), Clock()
    commit = GroupCommit(db, lambda session, items: [None] * len(items), DeferredLock(),
                         turns=clock)
    fired = []
    for i in range(16):
        commit.add(i).addCallback(lambda _, i=i: fired.append(i))
    commit.add_quiet("a", "b")
    assert db.transactions == [] and fired == []
    clock.advance(0)
    assert db.transactions == [list(range(16)) + ["a", "b"]]
    assert fired == list(range(16))


def test_without_turns_the_first_item_starts_a_transaction_at_once():
    """Without ``turns`` an item added while no transaction runs starts one at once: the
    Clock-driven outbox tests read their commits straight after each call."""
    db = RecordingDb()
    commit = GroupCommit(db, lambda session, items: [None] * len(items), DeferredLock())
    commit.add(1)
    commit.add(2)
    assert db.transactions == [[1], [2]]
