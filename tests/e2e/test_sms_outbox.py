"""The whole SMS path against real SMSC processes: outbox -> dispatcher -> SMPP -> DLR -> state.

Each test accepts messages into a real SQLite outbox, runs the dispatcher and the
SmppRouter on a fresh reactor, and asserts every accepted message reaches exactly
one final state (delivered here), none lost; against smsc_sim also that the SMSC
accepted each body once (duplicates counted by the SMSC itself).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from core_client.testing import FakeCore
from sandbox.pytest_smsc import run_on_fresh_reactor, sleep, start_sim_smsc
from sms.carrier import text
from benchmarks.smpp_peer import smsc_config
from sms.outbox.dispatcher import Dispatcher
from sms.keywords import KeywordHandler
from sms.outbox.outbox import Outbox
from sms.outbox.records import EncodedPart, Outgoing
from sms.outbox.states import DELIVERED
from sms.carrier.router import PermanentError, SmppRouter, SubmitPart, TemporaryError
from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled
from sms.tables import SmsMessage
from sms.templates import TemplateSet
from storage.db import Database
from tests.support.outbox import make_config

pytestmark = pytest.mark.e2e

LONG = "【示例公积金】" + "您的公积金贷款本期还款已入账，感谢您按时还款。" * 6  # 3 UCS2 parts


class Stack:
    """Outbox, dispatcher, router and MO handler on one reactor, like SmsService."""

    def __init__(self, reactor, url: str, smsc, core=None, window: int = 10, journal=None):
        self.reactor = reactor
        self.db = Database(url, reactor, 2)
        self.db.create_all()
        config = make_config(retry_base=0.2, retry_max=1.0, quiet_hours={},
                             per_destination_per_hour=10**6,
                             keywords={"demo": {"YE": "balance", "TD": "unsubscribe"}})
        self.outbox = Outbox(self.db, reactor, config, encode=text.encode,
                             templates=TemplateSet({"demo": "示例公积金"}), batch_turns=True)
        self.core = core or FakeCore("demo", persons=20)
        self.keywords = KeywordHandler(self.db, self.outbox, {"demo": self.core}, config, reactor)
        self.router = SmppRouter([smsc], reactor, on_receipt=self._receipt,
                                 on_mo=self.keywords.on_mo,
                                 on_send=journal.sent if journal is not None else None)
        self.dispatcher = Dispatcher(
            self.outbox, self.router, reactor, make_part=lambda m, p: SubmitPart(
                m.destination, "12329", p.payload, p.data_coding, p.esm_class),
            temporary=(TemporaryError,), permanent=(PermanentError,),
            doubtful=(SmppTimeout, LinkLost), unsent=(NeverSent,), throttled=(Throttled,),
            batch=200, max_inflight=2 * window, poll=0.1, journal=journal)

    def _receipt(self, r):
        done = r.done_at.timestamp() if r.done_at is not None else None
        return self.outbox.receipt(r.message_id, r.smsc, r.state, r.error, done,
                                   destination=r.source)

    async def start(self):
        self.router.startService()
        await self.dispatcher.startService()

    async def stop(self):
        await self.dispatcher.stopService()
        await self.router.stopService()
        self.db.stopService()

    async def accept(self, n: int, body: str, prefix: str = "1390") -> None:
        enc = text.encode(body, max_parts=5)
        parts = tuple(EncodedPart(p, enc.data_coding, enc.esm_class) for p in enc.parts)
        for i in range(n):
            await self.outbox.accept(Outgoing("demo", "bulk", "e2e", {}, body,
                                              f"{prefix}{i:07d}", f"{prefix}-{i}", parts))

    async def until_final(self, total: int, timeout: float = 30.0) -> dict:
        waited = 0.0
        while True:
            counts = await self.outbox.counts()
            final = sum(counts.get(s, 0) for s in ("delivered", "failed", "expired"))
            if final == total:
                return counts
            if waited > timeout:
                raise AssertionError(f"not final after {timeout}s: {counts}")
            await sleep(self.reactor, 0.05)
            waited += 0.05


@pytest.mark.parametrize("bind_mode,binds", [
    ("transceiver", {"bind_transceiver": 1}),
    ("pair", {"bind_transmitter": 1, "bind_receiver": 1}),
])
def test_npm_smsc_single_and_multipart_delivered(npm_smsc, tmp_path, bind_mode, binds):
    """Accept -> submit -> DLR delivered for 5 single and 2 three-part messages (npm SMSC),
    over one transceiver bind, and over a pair: submits on the transmitter, receipts on
    the receiver."""
    cfg = replace(smsc_config(npm_smsc.port, 10, name="npm"), password="secret",
                  bind_mode=bind_mode)

    async def go(reactor):
        stack = Stack(reactor, f"sqlite:///{tmp_path / 'o.db'}", cfg)
        await stack.start()
        try:
            await stack.accept(5, "【示例公积金】您的公积金已入账。", prefix="1390")
            await stack.accept(2, LONG, prefix="1380")
            return await stack.until_final(7)
        finally:
            await stack.stop()

    assert run_on_fresh_reactor(go, timeout=60) == {DELIVERED: 7}
    stats = npm_smsc.stats()
    assert stats["submits"] == 5 + 2 * 3 and stats["bind_commands"] == binds


def test_npm_smsc_mo_keyword_gets_a_reply(npm_smsc, tmp_path):
    """An MO 'YE' from the registered mobile is stored and answered with the balance SMS."""
    cfg = replace(smsc_config(npm_smsc.port, 10, name="npm"), password="secret")
    core = FakeCore("demo", persons=20)
    mobile = core._persons[next(iter(core._persons))][4]

    async def go(reactor):
        stack = Stack(reactor, f"sqlite:///{tmp_path / 'o.db'}", cfg, core=core)
        await stack.start()
        try:
            while stack.router.bound_count() < 1:
                await sleep(reactor, 0.05)
            await reactor_post(reactor, npm_smsc, {"source": mobile, "destination": "12329",
                                                   "text": "YE"})
            await stack.until_final(1)
            return await stack.db.run(lambda s: s.execute(
                select(SmsMessage.template, SmsMessage.state)).all())
        finally:
            await stack.stop()

    rows = run_on_fresh_reactor(go, timeout=60)
    assert [(r.template, r.state) for r in rows] == [("balance_reply", DELIVERED)]


async def reactor_post(reactor, smsc, body):
    from twisted.internet.threads import deferToThreadPool

    return await deferToThreadPool(reactor, reactor.getThreadPool(), smsc.post, "/mo", body)


@pytest.mark.parametrize("faults,id_form", [
    ({"latency": 0.02}, "auto"),
    ({"throttle_every": 15, "throttle_burst": 4}, "auto"),
    ({"dlr_before_resp": True}, "auto"),
    ({"hex_ids_in_dlr": True}, "hex"),
    ({"disconnect_after": 40, "disconnect_hold": 10, "latency": 0.01}, "auto"),
], ids=["latency", "throttling", "early-dlr", "hex-ids", "disconnect-full-window"])
def test_smsc_sim_faults_every_message_final_once(log_dir, tmp_path, faults, id_form):
    """Under each fault, all 120 accepted messages end delivered and none is lost."""
    smsc = start_sim_smsc(log_dir, **faults)
    try:
        cfg = replace(smsc_config(smsc.port, 10, name="sim"), password="secret",
                      message_id_dlr=id_form)

        async def go(reactor):
            stack = Stack(reactor, f"sqlite:///{tmp_path / 'o.db'}", cfg)
            await stack.start()
            try:
                await stack.accept(100, "【示例公积金】您的公积金已入账。")
                await stack.accept(20, LONG, prefix="1380")
                counts = await stack.until_final(120, timeout=60)
                duplicates = await stack.outbox.counter("possible_duplicates")
                return counts, duplicates
            finally:
                await stack.stop()

        counts, _ = run_on_fresh_reactor(go, timeout=90)
        stats = smsc.stats()
    finally:
        smsc.stop()
    assert counts == {DELIVERED: 120}
    assert stats["distinct_accepted"] == 100 + 20 * 3
    if "disconnect_after" in faults:
        assert stats["duplicates"] <= 10  # only parts whose response never came
    else:
        assert stats["duplicates"] == 0
