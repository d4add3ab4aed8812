"""Several daemons on one outbox: a dead daemon's claims go to the survivors, detected by
its lapsed cluster lease (storage.cluster), not by its name coming back."""
from __future__ import annotations

import time

from sms.outbox.outbox import Outbox
from sms.outbox.states import QUEUED, SUBMITTING
from sms.outbox.testing import split_encode
from sms.templates import TemplateSet
from storage import cluster
from tests.support.outbox import (  # noqa: F401  (fixtures)
    clock, db, make_config, msg, result, states)


def daemon(db, clock, name: str) -> Outbox:
    return Outbox(db, clock, make_config(), encode=split_encode, instance=name,
                  templates=TemplateSet({"demo": "示例公积金"}))


def test_a_dead_daemons_claims_go_back_to_the_queue_for_a_survivor(db, clock):
    """Daemon a claims two messages and dies; while its lease runs nothing moves; once it
    has lapsed the survivor requeues them (each part a possible duplicate) and claims
    them. Daemon b's own claim, alive, is never touched."""
    a, b = daemon(db, clock, "a"), daemon(db, clock, "b")
    ids = [result(a.accept(msg(f"m{i}", dest=f"139000000{i:02d}", parts=1 + i % 2))).message_id
           for i in range(3)]
    db.run_sync(cluster.heartbeat, "a", 0.5, {}, True)
    db.run_sync(cluster.heartbeat, "b", 60, {}, True)
    held_by_a = [m.message_id for m in result(a.claim(2))]
    held_by_b = [m.message_id for m in result(b.claim(1))]
    assert result(b.recover_lapsed()) == 0  # a is still within its lease
    assert set(states(db).values()) == {SUBMITTING}

    time.sleep(0.7)  # a's lease lapses: it died
    assert result(b.recover_lapsed()) == 3  # a's two messages, three parts in flight
    after = states(db)
    assert [after[i] for i in held_by_a] == [QUEUED, QUEUED]
    assert [after[i] for i in held_by_b] == [SUBMITTING]
    assert result(b.counter("possible_duplicates")) == 3
    assert sorted(m.message_id for m in result(b.claim(10))) == sorted(held_by_a)
    assert sorted(ids) == sorted(held_by_a + held_by_b)
