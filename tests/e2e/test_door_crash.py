"""kill -9 of the daemon under door load: nothing acknowledged is lost, and nothing is sent
twice beyond what the outbox counts as possible duplicates (its bind windows).

REST: a city system pushes 20,000 messages in batches of 1,000, each with idempotency keys;
the daemon is killed mid-way and restarted; the client resends every batch it did not see
answered, with the same keys. SMPP: smpplib submits one message at a time; the daemon is
killed mid-way; every message whose submit_sm_resp arrived must be delivered, and the one
in flight at the kill may exist at most once more."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from sandbox.door_stack import DoorStack
from sandbox.pytest_smsc import start_sim_smsc
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

DEPOSIT = {"template": "deposit_credited",
           "params": {"account": "12345678", "date": "2026-11-26", "amount": "100",
                      "balance": "2000"}}
TOTAL, BATCH = 20_000, 1_000


def counts(db: str) -> dict:
    with sqlite3.connect(db, timeout=30) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM sms_message GROUP BY state"))


def counter(db: str, name: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute("SELECT value FROM sms_counter WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


@pytest.fixture
def sim(log_dir):
    smsc = start_sim_smsc(log_dir, latency=0.002)
    yield smsc
    smsc.stop()


def test_kill_9_during_rest_batch_load(sim, log_dir, tmp_path):
    """20,000 messages in 20 batches; SIGKILL after some are answered; restart and resend the
    unanswered batches with the same keys: every message delivered, each key once."""
    stack = DoorStack(tmp_path, log_dir, sim.port)
    stack.prepare()
    stack.start()
    db = str(tmp_path / "hotline.db")
    batches = [[{"to": f"139{20_000_000 + b * BATCH + i:08d}", "key": f"k{b}-{i}", **DEPOSIT}
                for i in range(BATCH)] for b in range(TOTAL // BATCH)]
    answered: dict[int, dict] = {}

    def push():
        for b, items in enumerate(batches):
            try:
                status, body = stack.call("POST", "/batch", {"messages": items}, timeout=60)
            except OSError:
                return  # the daemon died under this batch
            if status == 200:
                answered[b] = body

    try:
        sender = threading.Thread(target=push)
        sender.start()
        wait_for(lambda: len(answered) >= 6, 120, "six batches answered", interval=0.3)
        stack.kill()
        sender.join(60)
        acknowledged = {r["message_id"] for body in answered.values() for r in body["results"]}
        before = counts(db)
        stack.start()
        for b, items in enumerate(batches):
            if b not in answered:
                status, body = stack.call("POST", "/batch", {"messages": items})
                assert status == 200
                answered[b] = body
        everything = {r["message_id"] for body in answered.values() for r in body["results"]}
        wait_for(lambda: counts(db).get("delivered", 0) >= TOTAL, 400, "all delivered", interval=0.3)
        after = counts(db)
        possible = counter(db, "possible_duplicates")
        stats = sim.stats()
    finally:
        stack.stop()
    print(f"door crash (REST): {len(acknowledged)} acknowledged before the kill, states then "
          f"{before}; after {after}; SMSC duplicates {stats['duplicates']}, counted {possible}")
    assert acknowledged <= everything and len(everything) == TOTAL
    assert after == {"delivered": TOTAL}
    assert stats["distinct_accepted"] == TOTAL
    assert stats["duplicates"] <= possible <= 2 * 64 + 64


def test_kill_9_during_smpp_server_load(sim, log_dir, tmp_path):
    """smpplib submits until killed mid-way: every message with a submit_sm_resp is in the
    outbox and delivered after the restart; the one in flight at most once more."""
    import smpplib.client
    import smpplib.exceptions

    stack = DoorStack(tmp_path, log_dir, sim.port)
    stack.prepare()
    stack.start()
    db = str(tmp_path / "hotline.db")
    acked: list[str] = []
    text = "【示例公积金】您的公积金账户信息已变更。".encode("utf-16-be")

    def submit_until_dead():
        client = smpplib.client.Client("127.0.0.1", stack.smpp_port,
                                       allow_unknown_opt_params=True)
        client.set_message_sent_handler(lambda pdu: acked.append(pdu.message_id.decode()))
        client.connect()
        client.bind_transmitter(system_id="cityloans", password=stack.smpp_password)
        try:
            for i in range(100_000):
                client.send_message(destination_addr=f"139{30_000_000 + i:08d}",
                                    short_message=text, data_coding=8, registered_delivery=True)
                client.read_once()
        except (smpplib.exceptions.ConnectionError, OSError):
            return

    try:
        sender = threading.Thread(target=submit_until_dead)
        sender.start()
        wait_for(lambda: len(acked) >= 500, 120, "500 submits answered", interval=0.3)
        stack.kill()
        sender.join(30)
        stack.start()
        wanted = set(acked)
        with sqlite3.connect(db, timeout=30) as conn:
            stored = {str(r[0]) for r in conn.execute("SELECT id FROM sms_message")}
        wait_for(lambda: counts(db).get("delivered", 0) >= len(stored), 120, "all delivered", interval=0.3)
        after = counts(db)
    finally:
        stack.stop()
    print(f"door crash (SMPP): {len(wanted)} answered, {len(stored)} stored, after {after}")
    assert wanted <= stored
    assert len(stored) - len(wanted) <= 1
    assert after == {"delivered": len(stored)}
