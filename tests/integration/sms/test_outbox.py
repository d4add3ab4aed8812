"""The outbox state machine, dedupe, opt-out, limits, quiet hours, receipts and crash recovery."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from sms.outbox.expiry import EXPIRY_GRACE
from sms.outbox.outbox import Outbox
from sms.outbox.records import (
    DestinationLimited,
    OptedOut,
    SubmitResult,
)
from sms.outbox.states import (
    DELIVERED,
    EXPIRED,
    FAILED,
    QUEUED,
    SUBMITTED,
    SUBMITTING,
    IllegalTransition,
    check_transition,
    rollup,
)
from sms.outbox.testing import split_encode
from sms.tables import SmsMessage, SmsPart

from tests.support.outbox import (  # noqa: F401  (fixtures)
    MOBILE, TZ, clock, db, db_url, make_config, msg, noon, outbox, part_states, result, states)


def test_transitions_table_rejects_illegal_moves():
    """Only the declared state changes are allowed; a delivered message cannot be requeued."""
    check_transition(QUEUED, SUBMITTING)
    check_transition(SUBMITTED, DELIVERED)
    with pytest.raises(IllegalTransition):
        check_transition(DELIVERED, QUEUED)
    with pytest.raises(IllegalTransition):
        check_transition(QUEUED, DELIVERED)


def test_rollup_of_part_states():
    """A message is delivered only when every part is; any failed part fails it."""
    assert rollup([DELIVERED, DELIVERED]) == DELIVERED
    assert rollup([DELIVERED, SUBMITTED]) == SUBMITTED
    assert rollup([DELIVERED, FAILED]) == FAILED
    assert rollup([DELIVERED, EXPIRED]) == EXPIRED
    assert rollup([SUBMITTED, SUBMITTING]) == SUBMITTING
    assert rollup([SUBMITTED, QUEUED]) == QUEUED


def test_accept_commits_and_dedupes_by_idempotency_key(outbox, db):
    """A second accept with the same key returns the first message and stores nothing new."""
    a = result(outbox.accept(msg("same", parts=2)))
    b = result(outbox.accept(msg("same", parts=2)))
    assert not a.duplicate and b.duplicate and a.message_id == b.message_id
    assert states(db) == {a.message_id: QUEUED}
    assert part_states(db) == [QUEUED, QUEUED]


def test_same_key_twice_in_one_batch_is_one_message(outbox, db):
    """Twins arriving in the same group commit are still deduplicated."""
    outbox.lock.acquire()  # hold the lane so both land in one batch
    d1, d2 = outbox.accept(msg("twin")), outbox.accept(msg("twin"))
    outbox.lock.release()
    a, b = result(d1), result(d2)
    assert a.message_id == b.message_id and b.duplicate
    assert len(states(db)) == 1


def test_accepting_waits_for_the_dispatchers_transactions_only_on_sqlite(outbox, db):
    """SQLite has one writer: an accept waits while a claim or a batch of results runs.
    On PostgreSQL accepting inserts new rows beside that work and does not wait."""
    held = result(outbox.lock.acquire())  # the dispatcher's transaction, running
    d = outbox.accept(msg("k-while-busy"))
    assert d.called is (not db.is_sqlite)
    held.release()
    assert result(d).duplicate is False


def test_claims_wait_for_submit_results_only_on_sqlite(outbox, db):
    """On PostgreSQL a claim (queued rows, skipping locked ones) runs beside a transaction
    of submit results and receipts (rows already claimed), so a window's results never hold
    the next claim back; SQLite has one writer. The expiry sweep, which moves both kinds
    of rows, still waits for a running claim."""
    a = result(outbox.accept(msg("k-claim-while-busy")))
    held = result(outbox.lock.acquire())  # a batch of submit results, running
    d = outbox.claim(10)
    assert d.called is (not db.is_sqlite)
    held.release()
    assert [m.message_id for m in result(d)] == [a.message_id]
    claiming = result(outbox.claim_lock.acquire())
    swept: list = []
    outbox.expire_stale().addCallback(swept.append)
    assert swept == []
    claiming.release()
    assert swept == [0]


def test_opted_out_destination_refused_for_alerts_not_codes(outbox):
    """TD stops alerts and bulk for that center; verification codes still go out."""
    result(outbox.set_opt_out("demo", MOBILE, True))
    with pytest.raises(OptedOut):
        result(outbox.accept(msg("a1", "transaction")))
    assert not result(outbox.accept(msg("c1", "code"))).duplicate
    result(outbox.set_opt_out("demo", MOBILE, False))
    assert not result(outbox.accept(msg("a2", "transaction"))).duplicate


def test_per_destination_hourly_limit(db, clock):
    """The N+1st alert to one mobile within an hour is refused; codes are not counted."""
    box = Outbox(db, clock, make_config(per_destination_per_hour=2), encode=split_encode)
    result(box.accept(msg("1")))
    result(box.accept(msg("2")))
    result(box.accept(msg("c", "code")))
    with pytest.raises(DestinationLimited):
        result(box.accept(msg("3")))
    clock.advance(3601)
    assert not result(box.accept(msg("4"))).duplicate


def test_quiet_hours_hold_alerts_until_morning(db):
    """An alert accepted at 22:30 is not claimable until 08:00; a code is claimable at once."""
    clock = Clock()
    clock.advance(dt.datetime(2026, 11, 26, 22, 30, tzinfo=TZ).timestamp())
    box = Outbox(db, clock, make_config(), encode=split_encode)
    result(box.accept(msg("alert")))
    code = result(box.accept(msg("code", "code")))
    claimed = result(box.claim(10))
    assert [m.message_id for m in claimed] == [code.message_id]
    clock.advance(dt.datetime(2026, 11, 27, 8, 0, tzinfo=TZ).timestamp() - clock.seconds())
    assert len(result(box.claim(10))) == 1


def test_claim_orders_codes_then_alerts_then_bulk(outbox):
    """Priorities: verification codes first, then replies and alerts, then bulk notices."""
    bulk = result(outbox.accept(msg("b", "bulk", dest="13900000002")))
    alert = result(outbox.accept(msg("t", "transaction", dest="13900000003")))
    code = result(outbox.accept(msg("c", "code", dest="13900000004")))
    order = [m.message_id for m in result(outbox.claim(10))]
    assert order == [code.message_id, alert.message_id, bulk.message_id]


def submit_all(outbox, claimed, outcome="ok", error=None):
    results = []
    for m in claimed:
        for pid in m.part_ids:
            r = SubmitResult(pid, m.message_id, outcome, smpp_id=f"id{pid}" if outcome == "ok" else None,
                             smsc="s1", error=error)
            results.append(r)
            outbox.record(r)
    return results


def test_happy_path_submit_and_multipart_rollup(outbox, db):
    """A 2-part message is submitted when both parts are, delivered when both DLRs are."""
    a = result(outbox.accept(msg("m", parts=2)))
    claimed = result(outbox.claim(10))
    assert states(db)[a.message_id] == SUBMITTING
    submit_all(outbox, claimed)
    assert states(db)[a.message_id] == SUBMITTED
    pids = claimed[0].part_ids
    result(outbox.receipt(f"id{pids[0]}", "s1", "DELIVRD", None, None))
    assert states(db)[a.message_id] == SUBMITTED
    result(outbox.receipt(f"id{pids[1]}", "s1", "DELIVRD", None, None))
    assert states(db)[a.message_id] == DELIVERED


def test_one_undelivered_part_fails_the_message(outbox, db):
    """Roll-up: one part UNDELIV and one DELIVRD gives a failed message."""
    a = result(outbox.accept(msg("m", parts=2)))
    claimed = result(outbox.claim(10))
    submit_all(outbox, claimed)
    pids = claimed[0].part_ids
    result(outbox.receipt(f"id{pids[0]}", "s1", "DELIVRD", None, None))
    result(outbox.receipt(f"id{pids[1]}", "s1", "UNDELIV", "005", None))
    assert states(db)[a.message_id] == FAILED


def test_early_receipt_is_kept_and_matched_when_the_id_arrives(outbox, db):
    """A DLR before its submit_sm_resp is stored unmatched, then applied, not lost."""
    a = result(outbox.accept(msg("m")))
    claimed = result(outbox.claim(10))
    pid = claimed[0].part_ids[0]
    result(outbox.receipt(f"id{pid}", "s1", "DELIVRD", None, None))
    assert states(db)[a.message_id] == SUBMITTING
    outbox.record(SubmitResult(pid, a.message_id, "ok", smpp_id=f"id{pid}", smsc="s1"))
    assert states(db)[a.message_id] == DELIVERED


def test_temporary_error_requeues_with_backoff(outbox, db, clock):
    """A throttled part goes back to queued and is claimable only after the backoff."""
    a = result(outbox.accept(msg("m")))
    submit_all(outbox, result(outbox.claim(10)), outcome="temporary", error="throttled")
    assert states(db)[a.message_id] == QUEUED
    assert result(outbox.claim(10)) == []
    clock.advance(5)
    again = result(outbox.claim(10))
    assert [m.message_id for m in again] == [a.message_id]
    submit_all(outbox, again, outcome="temporary")
    clock.advance(5)
    assert result(outbox.claim(10)) == []  # second backoff is 10 s
    clock.advance(5)
    assert len(result(outbox.claim(10))) == 1


def test_permanent_error_recorded_with_smsc_code(outbox, db):
    """A permanent error fails the message and keeps the SMSC's status code."""
    a = result(outbox.accept(msg("m")))
    submit_all(outbox, result(outbox.claim(10)), outcome="permanent", error="0x0000000B")
    assert states(db)[a.message_id] == FAILED
    with db.sessions() as s:
        assert s.execute(select(SmsPart.error_code)).scalar() == "0x0000000B"


def test_validity_expires_queued_and_unconfirmed_messages(outbox, db, clock):
    """A code not sent within its validity expires; a submitted one without DLR expires later."""
    alert = result(outbox.accept(msg("a", "transaction", dest="13900000009")))
    submit_all(outbox, result(outbox.claim(10)))
    code = result(outbox.accept(msg("c", "code")))
    clock.advance(601)
    assert result(outbox.claim(10)) == []
    assert states(db)[code.message_id] == EXPIRED
    clock.advance(172800 + EXPIRY_GRACE)
    result(outbox.expire_stale())
    assert states(db)[alert.message_id] == EXPIRED


def test_recover_requeues_submitting_parts_and_counts_duplicates(outbox, db):
    """After a crash without a send journal, every claimed part without a committed
    answer is resent and counted as a possible duplicate; an answered part is not resent."""
    a = result(outbox.accept(msg("m", parts=3)))
    b = result(outbox.accept(msg("n", dest="13900000002")))
    claimed = {m.message_id: m for m in result(outbox.claim(10))}
    pids = claimed[a.message_id].part_ids
    assert part_states(db) == [SUBMITTING] * 4  # the claim commits the parts submitting
    outbox.record(SubmitResult(pids[0], a.message_id, "ok", smpp_id="x", smsc="s1"))
    assert result(outbox.recover()) == 3  # a's two unanswered parts and b's one
    assert states(db) == {a.message_id: QUEUED, b.message_id: QUEUED}
    assert result(outbox.counter("possible_duplicates")) == 3
    again = {m.message_id: m for m in result(outbox.claim(10))}
    assert len(again[a.message_id].part_ids) == 2  # the confirmed part is not resent


def test_sensitive_text_scrubbed_at_final_state(outbox, db):
    """A verification code's text and payload are removed once the message is final."""
    a = result(Deferred.fromCoroutine(outbox.send("demo", "verification_code",
                           {"code": "482913", "purpose": "登录", "minutes": 5},
                           MOBILE, "code-1")))
    with db.sessions() as s:
        row = s.execute(select(SmsMessage.params, SmsMessage.klass)).one()
        assert "482913" not in row.params and row.klass == "code"
    claimed = result(outbox.claim(10))
    submit_all(outbox, claimed)
    result(outbox.receipt(f"id{claimed[0].part_ids[0]}", "s1", "DELIVRD", None, None))
    with db.sessions() as s:
        text = s.execute(select(SmsMessage.text)).scalar()
        payload = s.execute(select(SmsPart.payload)).scalar()
    assert "482913" not in text and payload == b""
    assert states(db)[a.message_id] == DELIVERED


def test_sensitive_text_scrubbed_as_soon_as_submitted(outbox, db):
    """A verification code's text and payload go once every part is submitted, before any
    receipt (which may never come): the code does not wait in the outbox for a final state."""
    a = result(Deferred.fromCoroutine(outbox.send("demo", "verification_code",
                           {"code": "482914", "purpose": "登录", "minutes": 5},
                           MOBILE, "code-2")))
    submit_all(outbox, result(outbox.claim(10)))
    assert states(db)[a.message_id] == SUBMITTED
    with db.sessions() as s:
        text = s.execute(select(SmsMessage.text)).scalar()
        payload = s.execute(select(SmsPart.payload)).scalar()
    assert "482914" not in text and payload == b""


def test_a_part_without_receipt_becomes_unknown_and_a_late_receipt_settles_it(outbox, db, clock):
    """After its class's receipt timeout a submitted part is unknown (not sent, not
    delivered), counted apart in the statistics; a receipt that comes later still decides."""
    from sms.stats import collect_sync

    a = result(outbox.accept(msg("m", "code")))
    claimed = result(outbox.claim(10))
    submit_all(outbox, claimed)
    clock.advance(outbox.config.receipt_timeout["code"] - 1)
    result(outbox.expire_stale())
    assert states(db)[a.message_id] == SUBMITTED
    clock.advance(2)
    result(outbox.expire_stale())
    assert states(db)[a.message_id] == "unknown" and part_states(db) == ["unknown"]
    row = collect_sync(db, 0)["rows"][0]
    assert row["unknown"] == 1 and row["delivered"] == 0
    pid = claimed[0].part_ids[0]
    result(outbox.receipt(f"id{pid}", "s1", "DELIVRD", None, None))
    assert states(db)[a.message_id] == DELIVERED


def test_recovered_in_flight_messages_go_first_after_a_restart(outbox, db, clock):
    """The messages a crash left claimed are claimed before the backlog accepted before them."""
    ids = [result(outbox.accept(msg(f"m{i}", "bulk", dest=f"139000000{i:02d}"))).message_id
           for i in range(6)]
    clock.advance(1)
    held = [m.message_id for m in result(outbox.claim(2))]
    assert held == ids[:2]
    clock.advance(30)  # the crash and the restart
    result(outbox.recover())
    assert sorted(m.message_id for m in result(outbox.claim(2))) == held


def test_a_failed_message_carries_the_reason_of_the_part_that_decided_it(outbox, db):
    """The message-level error is the failed part's code, not empty."""
    a = result(outbox.accept(msg("m", parts=2)))
    [m] = result(outbox.claim(10))
    outbox.record(SubmitResult(m.part_ids[0], a.message_id, "permanent", smsc="s1",
                               error="0x0000000B"))
    outbox.record(SubmitResult(m.part_ids[1], a.message_id, "ok", smpp_id="x1", smsc="s1"))
    result(outbox.receipt("x1", "s1", "DELIVRD", None, None))
    with db.sessions() as s:
        row = s.execute(select(SmsMessage.state, SmsMessage.error)).one()
    assert row == (FAILED, "0x0000000B")


def test_a_part_that_goes_through_clears_its_old_error(outbox, db, clock):
    """A throttled part that is later accepted keeps no stale error code."""
    a = result(outbox.accept(msg("m")))
    submit_all(outbox, result(outbox.claim(10)), outcome="temporary", error="Throttled")
    clock.advance(10)
    [m] = result(outbox.claim(10))
    outbox.record(SubmitResult(m.part_ids[0], a.message_id, "ok", smpp_id="x1", smsc="s1"))
    with db.sessions() as s:
        assert s.execute(select(SmsPart.error_code)).scalar() is None
