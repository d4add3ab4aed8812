"""The SMPP client against real peers over loopback: the npm ``smpp`` SMSC and smsc_sim.

Each test runs the router on its own fresh reactor; the SMSC is a separate
process on a free 127.0.0.1 port. Against smsc_sim the faults are real: throttle
bursts, a disconnect with a full window, DLRs before responses, hex ids; every
test asserts each message was accepted exactly once and got its receipt.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from twisted.internet.defer import succeed

from sandbox.pytest_smsc import run_on_fresh_reactor, sleep
from sms.config import SmscConfig
from sms.carrier.router import SmppRouter, SubmitPart
from sms.smpp.protocol import TemporaryError
from sms.carrier.text import encode

pytestmark = pytest.mark.e2e

DEST = "10690000123"  # a service number, not a mobile: nothing to mask in test output


def _config(endpoint: str, **changes) -> SmscConfig:
    base = SmscConfig(name="e2e", endpoint=endpoint, system_id="hotline", password="secret",
                      system_type="", bind_mode="transceiver", binds=1, window=10,
                      throughput=0.0, response_timeout=5.0, enquire_link=30.0, prefixes=(),
                      source_addr="12329", reconnect_min=0.1, reconnect_max=0.5)
    return replace(base, **changes)


class Peer:
    """A router on the test's reactor, collecting receipts and MO messages."""

    def __init__(self, reactor, config: SmscConfig):
        self.reactor = reactor
        self.receipts, self.mos = [], []
        self.router = SmppRouter([config], reactor, on_receipt=self._receipt, on_mo=self._mo)

    def _receipt(self, r):
        self.receipts.append(r)
        return succeed(None)

    def _mo(self, m):
        self.mos.append(m)
        return succeed(None)

    async def until(self, condition, timeout: float = 10.0, step: float = 0.02):
        waited = 0.0
        while not condition():
            if waited > timeout:
                raise AssertionError(f"condition not met in {timeout}s: {self.router.states()}")
            await sleep(self.reactor, step)
            waited += step

    async def send_all(self, parts: list[SubmitPart], retry: float = 0.1) -> dict:
        """Submit every part, retrying temporary errors like the outbox does; part -> id."""
        ids: dict[int, str] = {}
        pending = list(range(len(parts)))
        self.temporary = 0
        while pending:
            await self.until(lambda: self.router.bound_count() > 0)
            results = {}
            for i in pending:
                self.router.submit(parts[i]).addBoth(
                    lambda r, i=i, results=results: results.__setitem__(i, r))
            await self.until(lambda results=results, pending=pending:
                             len(results) == len(pending), timeout=20)
            retry_now = []
            for i, r in results.items():
                if hasattr(r, "check"):
                    assert r.check(TemporaryError), r.getTraceback()
                    self.temporary += 1
                    retry_now.append(i)
                else:
                    ids[i] = r.message_id
            pending = retry_now
            if pending:
                await sleep(self.reactor, retry)
        return ids


def _parts(texts: list[str]) -> list[SubmitPart]:
    out = []
    for t in texts:
        e = encode(t)
        out += [SubmitPart(DEST, "12329", p, e.data_coding, e.esm_class) for p in e.parts]
    return out


def test_npm_smsc_single_and_two_part_ucs2_with_receipts_and_mo(npm_smsc):
    """Bind to node-smpp, send a 1-part and a 2-part Chinese message, get all 3 DLRs, get an MO."""
    single = "【示例公积金】您的公积金账户本月缴存已入账。"
    double = "【示例公积金】" + "您的住房公积金账户于本月入账，请登录网上服务大厅查询详情。" * 3
    assert encode(double).part_count == 2

    async def scenario(reactor):
        peer = Peer(reactor, _config(npm_smsc.endpoint))
        peer.router.startService()
        ids = await peer.send_all(_parts([single, double]))
        await peer.until(lambda: len(peer.receipts) == 3)
        assert sorted(r.message_id for r in peer.receipts) == sorted(ids.values())
        assert {r.state for r in peer.receipts} == {"DELIVRD"}
        assert npm_smsc.post("/mo", {"source": "10690000999", "destination": "12329",
                                     "text": "余额"})["ok"]
        await peer.until(lambda: peer.mos)
        await peer.router.stopService()
        return peer.mos[0]

    mo = run_on_fresh_reactor(scenario)
    assert mo.text == "余额" and mo.destination == "12329"
    stats = npm_smsc.stats()
    assert stats["submits"] == 3 and stats["dlrs_acked"] == 3 and stats["unbinds"] == 1
    sent = stats["submitted"]
    assert [s["data_coding"] for s in sent] == [8, 8, 8]
    assert sent[1]["udh"] and sent[2]["udh"] and not sent[0]["udh"]


def _exactly_once(sim, n: int) -> None:
    stats = sim.stats()
    assert stats["distinct_accepted"] == n and stats["duplicates"] == 0, stats


def test_sim_throttle_bursts_every_message_accepted_once(sim_smsc):
    """Bursts of ESME_RTHROTTLED: parts are retried, the bind slows, each is accepted once."""
    sim_smsc.post("/config", {"throttle_every": 25, "throttle_burst": 3, "latency": 0.005})
    parts = _parts([f"alert {i}" for i in range(60)])

    async def scenario(reactor):
        peer = Peer(reactor, _config(sim_smsc.endpoint, window=16))
        peer.router.startService()
        ids = await peer.send_all(parts)
        await peer.until(lambda: len(peer.receipts) == len(parts))
        assert {r.message_id for r in peer.receipts} == set(ids.values())
        throttled = peer.router.states()["e2e"]["e2e-0"]["throttled"]
        await peer.router.stopService()
        return throttled, peer.temporary

    throttled, temporary = run_on_fresh_reactor(scenario)
    assert throttled > 0 and temporary == throttled
    _exactly_once(sim_smsc, len(parts))


def test_sim_disconnect_with_full_window(sim_smsc):
    """The SMSC drops the link holding a full window: those parts fail LinkLost, are resent
    after the rebind, and every message is accepted exactly once."""
    sim_smsc.post("/config", {"disconnect_after": 20, "disconnect_hold": 10, "latency": 0.01})
    parts = _parts([f"notice {i}" for i in range(50)])

    async def scenario(reactor):
        peer = Peer(reactor, _config(sim_smsc.endpoint, window=10))
        peer.router.startService()
        ids = await peer.send_all(parts)
        await peer.until(lambda: len(peer.receipts) == len(parts))
        assert {r.message_id for r in peer.receipts} == set(ids.values())
        binds = peer.router.states()["e2e"]["e2e-0"]["binds"]
        await peer.router.stopService()
        return binds, peer.temporary

    binds, temporary = run_on_fresh_reactor(scenario)
    assert binds == 2 and temporary >= 10
    stats = sim_smsc.stats()
    assert stats["disconnects"] == 1 and stats["held"] >= 10
    _exactly_once(sim_smsc, len(parts))


def test_sim_early_dlrs_and_hex_ids(sim_smsc):
    """DLRs arrive before their submit_sm_resp and carry hex ids: all still match."""
    sim_smsc.post("/config", {"dlr_before_resp": True, "hex_ids_in_dlr": True,
                              "latency": 0.02, "id_start": 0xA00})
    parts = _parts([f"code {i}" for i in range(30)])

    async def scenario(reactor):
        peer = Peer(reactor, _config(sim_smsc.endpoint, message_id_dlr="hex", window=8))
        peer.router.startService()
        ids = await peer.send_all(parts)
        await peer.until(lambda: len(peer.receipts) == len(parts))
        await peer.router.stopService()
        return ids, peer.receipts

    ids, receipts = run_on_fresh_reactor(scenario)
    assert {r.message_id for r in receipts} == set(ids.values())
    _exactly_once(sim_smsc, len(parts))


def test_bench_transport_runs_against_smsc_sim():
    """The transport micro-benchmark completes for our protocol and smpplib's baseline."""
    from benchmarks.smpp_transport import run

    results = run(windows=(1, 64), latencies_ms=(0.0,), seconds_per_run=0.05, max_count=500)
    assert {(r.client, r.window) for r in results} == {("protocol", 1), ("protocol", 64),
                                                        ("smpplib", 1)}
    assert all(r.per_second > 0 for r in results)
