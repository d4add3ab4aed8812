"""The SMS path against the fault-injecting SMSC (sandbox/smsc_sim.py) in its own process.

Poison destinations mixed into a burst, random ESME_RTHROTTLED/ESME_RMSGQFUL answers,
and link cuts every 7 s: nothing stalls, nothing drops the link but the cuts, throughput
holds, and every resend is counted as the SMSC's own ledger counts duplicates.
"""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from benchmarks.smpp_peer import smsc_config
from sandbox.pytest_smsc import run_on_fresh_reactor, sleep, start_sim_smsc
from sms.carrier import text
from sms.carrier.send_journal import SendJournal
from sms.outbox.records import EncodedPart, Outgoing
from sms.outbox.sql import M, P
from tests.support.sms_stack import Stack

pytestmark = pytest.mark.e2e

BODY = "【示例公积金】您的公积金已入账，感谢使用。"
POISON = "一三八"  # what a broken import once stored as a destination


def _messages(n: int, start: int = 0) -> list[Outgoing]:
    enc = text.encode(BODY)
    parts = tuple(EncodedPart(p, enc.data_coding, enc.esm_class) for p in enc.parts)
    return [Outgoing("demo", "bulk", "e2e", {}, BODY, f"139{i:08d}", f"f{i}", parts)
            for i in range(start, start + n)]


def _poison(stack, ids: list[int]) -> None:
    """Destinations the accept check now refuses, as rows accepted before it existed."""
    with stack.db.sessions() as s, s.begin():
        s.execute(update(M).where(M.c.id.in_(ids)).values(destination=POISON))


def _config(smsc, **changes):
    return replace(smsc_config(smsc.port, 16, name="sim"), password="secret", **changes)


async def _until(reactor, stack, predicate, timeout: float, what: str) -> dict:
    deadline = reactor.seconds() + timeout
    while True:
        counts = await stack.outbox.counts()
        if predicate(counts):
            return counts
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s: {counts}")
        await sleep(reactor, 0.05)


def test_poison_destinations_fail_alone_and_again_after_a_restart(log_dir, tmp_path):
    """300 valid messages with 12 poison ones among them: every valid one delivered, each
    poison one failed with its reason, one link throughout; then a crash leaves another such
    batch claimed, and the restarted stack counts none of the poison parts as duplicates."""
    smsc = start_sim_smsc(log_dir, latency=0.01)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    journal_dir = tmp_path / "journal"

    async def first(reactor):
        stack = Stack(reactor, url, _config(smsc), window=16,
                      journal=SendJournal(journal_dir, "e2e", boot_id="b"))
        results = stack.outbox.accept_blocking(_messages(312))
        _poison(stack, [r.message_id for r in results[::26]])
        await stack.start()
        try:
            return await _until(reactor, stack, lambda c: c.get("delivered", 0) + c.get(
                "failed", 0) == 312, 60, "all final")
        finally:
            await stack.stop()

    async def crash_and_restart(reactor):
        stack = Stack(reactor, url, _config(smsc), window=16,
                      journal=SendJournal(journal_dir, "e2e", boot_id="b"))
        results = stack.outbox.accept_blocking(_messages(312, start=1000))
        _poison(stack, [r.message_id for r in results[::26]])
        await stack.outbox.claim(1000)  # the crash: all claimed, none sent
        await stack.start()  # recovery, then sending
        try:
            counts = await _until(reactor, stack, lambda c: c.get("delivered", 0) + c.get(
                "failed", 0) == 624, 60, "all final after the restart")
            return counts, await stack.outbox.counter("possible_duplicates")
        finally:
            await stack.stop()

    try:
        assert run_on_fresh_reactor(first, timeout=90) == {"delivered": 300, "failed": 12}
        stats = smsc.stats()
        assert stats["binds"] == 1 and stats["accepted"] == 300  # one bind: no link drop
        counts, doubtful = run_on_fresh_reactor(crash_and_restart, timeout=90)
        stats = smsc.stats()
    finally:
        smsc.stop()
    assert counts == {"delivered": 600, "failed": 24}
    assert doubtful == 0 and stats["duplicates"] == 0 and stats["binds"] == 2
    from storage.db import Database
    db = Database(url, None, 1)
    with db.sessions() as s:
        errors = {r[0] for r in s.execute(select(P.c.error_code).join(
            M, M.c.id == P.c.message_id).where(M.c.destination == POISON))}
    db.engine.dispose()
    assert errors == {"unsendable destination_addr"}


def _send_time(smsc, tmp_path, name: str, n: int) -> float:
    """Seconds from the dispatcher's start until ``n`` accepted messages are all submitted."""
    async def go(reactor):
        stack = Stack(reactor, f"sqlite:///{tmp_path / name}", _config(smsc), window=16)
        stack.outbox.accept_blocking(_messages(n))
        start = time.monotonic()
        await stack.start()
        try:
            await _until(reactor, stack, lambda c: c.get("submitted", 0) == n, 120,
                         "all submitted")
            return time.monotonic() - start
        finally:
            await stack.stop()

    return run_on_fresh_reactor(go, timeout=150)


def test_throttling_keeps_most_of_the_unthrottled_rate(log_dir, tmp_path):
    """5 % ESME_RTHROTTLED and 2 % ESME_RMSGQFUL keep at least 70 % of the clean rate."""
    n = 3000
    clean = start_sim_smsc(log_dir, latency=0.02, dlr=False)
    try:
        t_clean = _send_time(clean, tmp_path, "clean.db", n)
    finally:
        clean.stop()
    faulty = start_sim_smsc(log_dir, latency=0.02, dlr=False, throttle_rate=0.05,
                            queue_full_rate=0.02)
    try:
        t_faulty = _send_time(faulty, tmp_path, "faulty.db", n)
        stats = faulty.stats()
    finally:
        faulty.stop()
    print(f"throttling: clean {n / t_clean:.0f}/s, 5% throttled + 2% queue full "
          f"{n / t_faulty:.0f}/s ({t_clean / t_faulty:.0%})")
    assert stats["throttled"] > 50 and stats["queue_full"] > 20
    assert t_clean / t_faulty >= 0.7


def test_link_cuts_every_7_s_count_every_duplicate(log_dir, tmp_path):
    """The SMSC cuts the link every 7 s with parts accepted and unanswered: all messages are
    delivered and the outbox's possible-duplicate counter equals the SMSC's duplicates."""
    smsc = start_sim_smsc(log_dir, latency=0.1, cut_every=7.0)
    n = 2400

    async def go(reactor):
        stack = Stack(reactor, f"sqlite:///{tmp_path / 'cuts.db'}", _config(smsc), window=16)
        stack.outbox.accept_blocking(_messages(n))
        await stack.start()
        try:
            counts = await _until(reactor, stack, lambda c: c.get("delivered", 0) == n, 150,
                                  "all delivered")
            return counts, await stack.outbox.counter("possible_duplicates")
        finally:
            await stack.stop()

    try:
        counts, counted = run_on_fresh_reactor(go, timeout=180)
        stats = smsc.stats()
    finally:
        smsc.stop()
    print(f"link cuts: {stats['cuts']} cuts, SMSC duplicates {stats['duplicates']}, "
          f"counted {counted}")
    assert counts == {"delivered": n}
    assert stats["cuts"] >= 2 and stats["duplicates"] > 0
    assert counted == stats["duplicates"]
