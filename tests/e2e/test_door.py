"""The SMS door end to end: the real daemon (no Asterisk) sending through the npm SMSC,
driven by real clients: a plain HTTP client through every refusal reason and a batch of
10,000 whose receipts reach a callback receiver that fails its first answers, and
smpplib's ESME binding to the door's SMPP server for single and long UCS2 messages."""
from __future__ import annotations

import time

import pytest

from sandbox.door_stack import CallbackReceiver, DoorStack
from sandbox.pytest_smsc import start_npm_smsc
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

DEPOSIT = {"template": "deposit_credited",
           "params": {"account": "12345678", "date": "2026-11-26", "amount": "100",
                      "balance": "2000"}}
LONG = "【示例公积金】" + "您的住房公积金贷款已于本月结清，抵押注销材料请携带身份证到中心窗口领取，谢谢。" * 2


def msg(to: str, **over) -> dict:
    return {"to": to, **DEPOSIT, **over}


def opted_out(stack) -> bool:
    import sqlite3

    with sqlite3.connect(stack.state_dir / "hotline.db", timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM sms_optout").fetchone()[0] > 0


@pytest.fixture
def npm(log_dir):
    smsc = start_npm_smsc(log_dir, dlr_delay_ms=20)
    yield smsc
    smsc.stop()


@pytest.fixture
def stack(npm, log_dir, tmp_path):
    receiver = CallbackReceiver(fail=5)
    door = DoorStack(tmp_path, log_dir, npm.port, callback_url=receiver.url)
    receiver.secret = door.secret
    door.prepare()
    door.start()
    door.receiver = receiver
    yield door
    door.stop()
    receiver.close()


def test_rest_refusals_batch_and_callbacks(stack, npm):
    """Every refusal reason over HTTP with its own code; a batch of 10,000 accepted in one
    request; every accepted message delivered and its receipt called back exactly once
    (by id) although the receiver refused its first five answers."""
    status, one = stack.call("POST", "", msg("13900000001"), signed=True)
    assert status == 202 and one["status"] == "accepted"
    npm.post("/mo", {"source": "13900000009", "destination": "12329", "text": "TD"})
    wait_for(lambda: opted_out(stack), 15, "the opt-out (TD by MO) stored")
    assert stack.call("POST", "", msg("13900000009"))[1].get("error") == "opted_out"
    cases = [
        ([1], "bad_request"),
        (msg("13900000002", center="nowhere"), "center_not_allowed"),
        (msg("1390000"), "invalid_number"),
        (msg("13900000002", template="no_such_template"), "template_not_enabled"),
        ({"to": "13900000002", "template": "verification_code",
          "params": {"code": "123456", "purpose": "登录", "minutes": "5"}}, "class_not_allowed"),
        (msg("13900000002", params={"account": "1"}), "bad_params"),
        ({"to": "13900000002", "text": "代开发票"}, "illegal_keyword"),
        (msg("13900000002", ext="77"), "extension_not_allowed"),
        (msg("13900000001"), "duplicate"),
    ]
    for item, reason in cases:
        status, body = stack.call("POST", "", item)
        assert (status, body["error"]) == (422, reason), reason
    status, body = stack.call("POST", "", msg("13900000003"), bearer="wrong")
    assert status == 401

    items = [msg(f"139{10_000_000 + i:08d}") for i in range(10_000)]
    started = time.monotonic()
    status, batch = stack.call("POST", "/batch", {"messages": items})
    took = time.monotonic() - started
    assert status == 200 and batch["accepted"] == 10_000, batch.get("refused")
    print(f"door e2e: batch of 10,000 accepted in {took:.2f} s")
    ids = {one["message_id"]} | {r["message_id"] for r in batch["results"]}
    status, state = stack.call("GET", f"/{one['message_id']}")
    assert status == 200 and state["state"] in ("queued", "submitting", "submitted",
                                                "delivered")
    wait_for(lambda: len(stack.receiver.events) >= len(ids), 240, "every receipt called back")
    time.sleep(1.5)  # a repeat would come within the retry period
    receiver = stack.receiver
    assert set(receiver.events) == {f"r:{i}" for i in ids}
    repeats = sum(len(v) - 1 for v in receiver.events.values())
    print(f"door e2e: {len(ids)} receipts called back, {receiver.posts} POSTs, "
          f"{repeats} repeats (dropped by id at the receiver)")
    assert all(v[0]["state"] == "delivered" for v in receiver.events.values())
    assert repeats == 0 and receiver.posts == len(ids) + 5
    assert receiver.bad_signatures == 0

    stack.hotline("door", "client", "change", "city-loans", "rate_per_second=1",
                  "free_text=no", "--config", str(stack.config_path), "--actor", "e2e")
    time.sleep(5.5)  # the daemon reloads its clients within 5 s
    codes = [stack.call("POST", "", msg(f"13900000{i:03d}"))[1].get("error") for i in (4, 5, 6)]
    assert "rate_limited" in codes
    status, body = stack.call("POST", "", {"to": "13900000002", "text": "您好"})
    assert body["error"] == "free_text_not_allowed"
    stack.hotline("door", "client", "change", "city-loans", "daily_quota=1", "rate_per_second=100",
                  "--config", str(stack.config_path), "--actor", "e2e")
    time.sleep(5.5)
    status, body = stack.call("POST", "", msg("13900000007"))
    assert (status, body["error"]) == (429, "quota_exceeded")
    stats = stack.hotline("sms", "stats", "--door", "--json", "--config", str(stack.config_path))
    assert '"quota_exceeded": 1' in stats and '"illegal_keyword": 1' in stats
    audit = stack.hotline("door", "client", "audit", "city-loans", "--config",
                          str(stack.config_path))
    assert audit.count(" change ") == 2 and "by e2e" in audit


def test_smpplib_esme_single_and_long_ucs2_with_receipts(stack):
    """smpplib binds as transceiver with the client's SMPP credentials, submits a single and
    a three-part UCS2 message, gets a message id for each submit_sm, and receives a
    delivery receipt (deliver_sm) for each."""
    import smpplib.client
    import smpplib.consts
    import smpplib.gsm

    client = smpplib.client.Client("127.0.0.1", stack.smpp_port, allow_unknown_opt_params=True)
    ids, receipts = [], []

    def sent(pdu):
        ids.append(pdu.message_id.decode())

    def received(pdu):
        receipts.append(pdu)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    client.bind_transceiver(system_id="cityloans", password=stack.smpp_password)
    for text in ("【示例公积金】您的提取申请已受理。", LONG):
        parts, coding, esm = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(source_addr="1232901", destination_addr="13900000011",
                                short_message=part, data_coding=coding, esm_class=esm,
                                registered_delivery=True)
    deadline = time.monotonic() + 30
    client._socket.settimeout(1)
    while len(receipts) < len(ids) or not ids:
        assert time.monotonic() < deadline, f"{len(receipts)} receipts for {len(ids)} submits"
        try:
            client.read_once()
        except (TimeoutError, OSError):
            continue
    client.unbind()
    client.disconnect()
    assert len(ids) == 1 + len(smpplib.gsm.make_parts(LONG)[0]) and len(set(ids)) == len(ids)
    assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(ids)
    assert all(b"stat:DELIVRD" in r.short_message for r in receipts)


def test_kannel_esme_single_and_long_ucs2_with_receipts(stack, log_dir, tmp_path):
    """Kannel's bearerbox binds to the door's SMPP server as the client's transceiver;
    smsbox's sendsms sends a single and a long UCS2 message (split by Kannel into parts),
    the door answers every submit_sm after its commit, the npm SMSC delivers them, and
    Kannel receives the receipts and reports each message delivered to its dlr-url."""
    from sandbox import kannel

    if not kannel.available():
        pytest.skip("Debian kannel is not installed (sandbox/setup.sh)")
    dlrs = kannel.DlrCollector()
    box = kannel.Kannel(tmp_path, log_dir, stack.smpp_port, "cityloans", stack.smpp_password)
    try:
        box.start()
        assert box.send("13900000021", "【示例公积金】您的提取申请已受理。", dlrs.port, "single") \
            == 202
        assert box.send("13900000022", LONG, dlrs.port, "long") == 202
        wait_for(lambda: {ref for ref, kind in dlrs.reports if kind == 1} >= {"single", "long"},
                 60, "Kannel's delivery reports")
    finally:
        box.stop()
        dlrs.close()
    delivered = [ref for ref, kind in dlrs.reports if kind == 1]
    print(f"door e2e: Kannel delivery reports {sorted(dlrs.reports)}")
    assert delivered.count("single") == 1 and delivered.count("long") >= 1
