"""The dispatcher keeps the windows full, passes over full SMSCs, and never loses a message."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from sms.outbox.dispatcher import Dispatcher
from sms.outbox.outbox import Outbox
from sms.outbox.records import EncodedPart, Outgoing
from sms.outbox.states import DELIVERED, FAILED, QUEUED, SUBMITTED
from sms.outbox.testing import (
    FakePermanent, FakeRouter, FakeTemporary, InlineDatabase, split_encode,
)
from sms.carrier.send_journal import SendJournal
from sms.tables import SmsPart
from tests.support.outbox import make_config, noon, result


@pytest.fixture
def env(db_url):
    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(db_url, None, 1)
    db.create_all()
    box = Outbox(db, clock, make_config(), encode=split_encode)
    router = FakeRouter(window=4)
    disp = Dispatcher(box, router, clock, make_part=lambda m, p: (m.message_id, p),
                      temporary=(FakeTemporary,), permanent=(FakePermanent,),
                      batch=10, max_inflight=4, poll=1.0)
    yield clock, box, router, disp
    disp.stopService()
    db.engine.dispose()


def accept(box, n, parts=1, klass="bulk", prefix="1390000"):
    return [result(box.accept(Outgoing(
        center="demo", klass=klass, template="t", params={}, text="x",
        destination=f"{prefix}{i:04d}", idem_key=f"k{klass}{prefix}{i}",
        parts=tuple(EncodedPart(b"p", 8, 0) for _ in range(parts))))) for i in range(n)]


def test_window_is_kept_full_and_never_exceeded(env):
    """With 10 queued messages and a window of 4, exactly 4 are out; answers free slots that
    are refilled once the reactor turns (one mark for a whole burst of responses)."""
    clock, box, router, disp = env
    accept(box, 10)
    disp.startService()
    assert len(router.pending) == 4
    router.answer()
    assert len(router.pending) == 3
    clock.advance(0)
    assert len(router.pending) == 4
    for _ in range(3):
        router.answer_all()
        clock.advance(0)
        assert len(router.pending) <= 4
    assert len(router.sent) == 10
    assert result(box.counts()) == {SUBMITTED: 10}


def test_new_accepts_wake_the_dispatcher(env):
    """A message accepted while idle is sent at the next reactor turn, not at the next poll."""
    clock, box, router, disp = env
    disp.startService()
    assert router.sent == []
    accept(box, 1, klass="code")
    clock.advance(0)
    assert len(router.sent) == 1


def test_parts_are_committed_submitting_before_they_are_sent(env):
    """When a part reaches the router, its row already says submitting."""
    clock, box, router, disp = env
    accept(box, 1, parts=3)
    disp.startService()
    assert len(router.pending) == 3
    rows = box.db.run_sync(lambda s: [r[0] for r in s.execute(
        __import__("sqlalchemy").text("select state from sms_part"))])
    assert rows == ["submitting"] * 3


def test_temporary_error_retries_after_backoff_and_delivers(env):
    """Throttled: the message returns to queued (its result committed once the reactor turns,
    after the turn's submits are written), is resent after the backoff, and delivered."""
    clock, box, router, disp = env
    accept(box, 1)
    disp.startService()
    router.fail(0, FakeTemporary("throttled"))
    clock.advance(0)
    assert result(box.counts()) == {QUEUED: 1}
    clock.advance(5)
    assert len(router.pending) == 1
    mid = router.answer()
    clock.advance(0)
    result(box.receipt(mid, "fake", "DELIVRD", None, None))
    assert result(box.counts()) == {DELIVERED: 1}
    assert disp.temporary_errors == 1


def test_permanent_error_fails_without_retry(env):
    """A permanent SMSC error is final: no resend even after the backoff would have passed."""
    clock, box, router, disp = env
    accept(box, 1)
    disp.startService()
    router.fail(0, FakePermanent(0x0B))
    clock.advance(600)
    assert result(box.counts()) == {FAILED: 1}
    assert len(router.sent) == 1


def test_every_accepted_message_reaches_one_final_state_under_mixed_faults(env):
    """Random mix of answers, throttles and receipts: all 30 end delivered, none lost or doubled."""
    import random

    rnd = random.Random(7)
    clock, box, router, disp = env
    accept(box, 30)
    disp.startService()
    for _ in range(2000):
        if not router.pending:
            clock.advance(5)
            if not router.pending and result(box.counts()).get(DELIVERED) == 30:
                break
            continue
        i = rnd.randrange(len(router.pending))
        if rnd.random() < 0.3:
            router.fail(i, FakeTemporary("throttled"))
        else:
            mid = router.answer(i)
            result(box.receipt(mid, "fake", "DELIVRD", None, None))
    assert result(box.counts()) == {DELIVERED: 30}


def test_stop_gives_claimed_messages_back(env):
    """Messages claimed but not sent are queued again when the dispatcher stops."""
    clock, box, router, disp = env
    accept(box, 10)
    disp.startService()
    result(disp.stopService())
    router.answer_all()
    counts = result(box.counts())
    assert counts == {SUBMITTED: 4, QUEUED: 6}


def test_an_idle_dispatcher_claims_once_per_poll(env):
    """With nothing queued the dispatcher asks the database once per poll interval,
    not in a loop (an idle daemon must not spin on empty claims)."""
    clock, box, router, disp = env
    claims = []
    real_claim = box.claim
    box.claim = lambda n: (claims.append(clock.seconds()), real_claim(n))[1]
    disp.startService()
    for _ in range(5):
        clock.advance(1.0)
    assert 1 <= len(claims) <= 7, len(claims)
    accept(box, 1, klass="code")
    clock.advance(0)
    assert len(router.sent) == 1


def test_a_full_smsc_does_not_hold_back_messages_for_another(env):
    """Codes for a carrier whose SMSC is full wait; bulk for another carrier goes meanwhile,
    and the codes go first as soon as their SMSC has room."""
    clock, box, router, disp = env
    router.full = {"138"}
    codes = accept(box, 3, klass="code", prefix="1380000")
    accept(box, 3, klass="bulk", prefix="1390000")
    disp.startService()
    assert sorted(part[0] for part, _ in router.pending) == [4, 5, 6]  # the bulk messages
    router.full = set()
    router.answer()
    clock.advance(0)
    assert sorted(part[0] for part, _ in router.pending) == [1, 2, 5, 6]  # room for two codes
    router.answer_all()
    clock.advance(0)
    assert [part[0] for part, _ in router.pending] == [codes[2].message_id]


def test_with_no_bind_up_nothing_is_sent_or_failed_until_one_binds(env):
    """At start, before any bind: messages wait in order instead of failing into backoff."""
    clock, box, router, disp = env
    router.up = False
    accept(box, 3)
    disp.startService()
    assert router.sent == [] and disp.temporary_errors == 0
    router.up = True
    for waiter in router._waiters:
        waiter.callback(None)
    assert len(router.sent) == 3


def test_the_send_journal_hears_each_result_after_its_commit(env, tmp_path):
    """Answered parts reach the journal's ``committed`` once their results are in the
    database (so its segments can go), each exactly once, and not before."""
    clock, box, router, _ = env
    journal = SendJournal(tmp_path / "journal", "t1")
    committed = []  # (part id, that part's state in the database when the journal heard)

    def part_state(part_id):
        return box.db.run_sync(lambda s: s.execute(
            select(SmsPart.state).where(SmsPart.id == part_id)).scalar())

    journal.committed = lambda part_id: committed.append((part_id, part_state(part_id)))
    disp = Dispatcher(box, router, clock, make_part=lambda m, p: (m.message_id, p),
                      temporary=(FakeTemporary,), permanent=(FakePermanent,),
                      batch=10, max_inflight=4, poll=1.0, journal=journal)
    accept(box, 3)
    disp.startService()
    assert committed == [] and len(router.pending) == 3
    router.answer_all()
    clock.advance(0)
    assert len(committed) == 3 and len({part_id for part_id, _ in committed}) == 3
    assert all(state == SUBMITTED for _, state in committed)  # told after the commit
    result(disp.stopService())


def test_work_accepted_while_a_claim_runs_is_claimed_when_that_claim_returns(env):
    """A claim that looked before an accept committed comes back empty: the dispatcher
    claims again at once instead of leaving the new message for the next poll."""
    clock, box, router, disp = env
    real_claim, running = box.claim, []
    box.claim = lambda n: running.append(Deferred()) or running[-1]
    disp.startService()
    assert len(running) == 1  # the first claim is still running
    accept(box, 1, klass="code")
    clock.advance(0)  # the accept wakes the dispatcher
    box.claim = real_claim
    running[0].callback([])  # what that claim saw: nothing yet
    assert len(router.sent) == 1


def test_claiming_follows_its_transition_table(env):
    """Claiming is an explicit machine: a short claim leaves the dispatcher drained until the
    poll, an accept wakes it at once, a stop ends it, and an illegal move raises."""
    from sms.outbox import dispatcher as dm

    clock, box, router, disp = env
    assert disp.state == dm.STOPPED
    disp.startService()
    assert disp.state == dm.DRAINED  # nothing queued: wait for the poll or an accept
    accept(box, 2)
    clock.advance(0)
    assert len(router.pending) == 2 and disp.state == dm.DRAINED
    with pytest.raises(dm.IllegalTransition):
        disp._to(dm.CLAIM_AGAIN)
    result(disp.stopService())
    assert disp.state == dm.STOPPED


def test_a_throttled_part_is_retried_soon_without_a_trip_through_the_queue(env):
    """ESME_RTHROTTLED is 'slow down', not 'come back in retry_base seconds': the part goes to
    the router again after a short pause, the message stays claimed; after a few throttles in
    a row it falls back to the queue's backoff."""
    from sms.outbox.testing import FakeThrottled

    clock, box, router, _ = env
    disp = Dispatcher(box, router, clock, make_part=lambda m, p: (m.message_id, p),
                      temporary=(FakeTemporary,), permanent=(FakePermanent,),
                      throttled=(FakeThrottled,), batch=10, max_inflight=4, poll=1.0)
    [a] = accept(box, 1)
    disp.startService()
    router.fail(0, FakeThrottled("throttled"))
    assert router.pending == [] and disp.inflight == 0
    clock.advance(Dispatcher.THROTTLE_RETRY)
    assert len(router.pending) == 1 and len(router.sent) == 2
    router.answer()
    clock.advance(0)
    assert result(box.counts()) == {SUBMITTED: 1} and disp.inflight == 0
    result(disp.stopService())


def test_a_receipt_waits_for_the_results_of_parts_in_flight_and_no_longer(db_url):
    """As the daemon runs it (``batch_turns``): a receipt arriving while parts are at the
    router commits in the transaction their results start (no receipts-only transaction
    overlaps the next answers), at most RECEIPT_HOLD later; with nothing in flight it
    commits at the end of its turn. Its Deferred (the DELIVER's answer) fires only after."""
    from sms.outbox.outbox import RECEIPT_HOLD

    clock = Clock()
    clock.advance(noon())
    db = InlineDatabase(db_url, None, 1)
    db.create_all()
    box = Outbox(db, clock, make_config(), encode=split_encode, batch_turns=True)
    router = FakeRouter(window=4)
    disp = Dispatcher(box, router, clock, make_part=lambda m, p: (m.message_id, p),
                      temporary=(FakeTemporary,), permanent=(FakePermanent,),
                      batch=10, max_inflight=4, poll=1.0)
    accept(box, 2)
    clock.advance(0)
    disp.startService()
    clock.advance(0)
    assert len(router.pending) == 2
    first = router.answer()
    clock.advance(0)
    clock.advance(0)
    clock.advance(0)
    assert result(box.counts()) == {SUBMITTED: 1, "submitting": 1}
    receipt = box.receipt(first, "fake", "DELIVRD", None, None)
    clock.advance(0)
    clock.advance(RECEIPT_HOLD / 2)
    assert not receipt.called  # the second part is in flight: its results will come
    second = router.answer()
    clock.advance(0)
    clock.advance(0)
    clock.advance(0)
    assert receipt.called and result(box.counts()) == {DELIVERED: 1, SUBMITTED: 1}
    late = box.receipt(second, "fake", "DELIVRD", None, None)
    clock.advance(0)
    assert late.called and result(box.counts()) == {DELIVERED: 2}  # nothing in flight
    result(disp.stopService())
    db.engine.dispose()
