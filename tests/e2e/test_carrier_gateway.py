"""The whole SMS path over each mainland carrier protocol, against the Node simulators;
SGIP's unbind after idle and its parked link at the end.

CMPP 2.0 and 3.0 (ISMG), SMGP 3.0 (SMGW) and SGIP 1.2 (SMG, which connects back to
the SP's listener for reports and MO): messages accepted into a real SQLite
outbox go through the dispatcher, the router and the protocol's link over real
sockets; each test asserts every accepted message reaches exactly one final
state, none lost, and the simulator's own count of what it accepted (duplicates
by destination and content).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from core_client.testing import FakeCore
from sandbox.ports import free_port
from sandbox.pytest_carriers import start_carrier_sim
from sandbox.pytest_smsc import run_on_fresh_reactor, sleep, start_sim_smsc
from sms.carrier.destinations import carrier_of
from sms.config import SmscConfig
from sms.outbox.states import DELIVERED
from sms.tables import SmsMessage, SmsPart
from tests.support.sms_stack import Stack

pytestmark = pytest.mark.e2e

SHORT = "【示例公积金】您的公积金已入账。"
LONG = "【示例公积金】" + "您的公积金贷款本期还款已入账，感谢您按时还款。" * 6  # 3 UCS2 parts
# protocol -> (simulator, carrier served, a segment of that carrier for test numbers)
PROTOCOLS = {"cmpp3": ("cmpp", "mobile", "138"), "cmpp2": ("cmpp", "mobile", "139"),
             "smgp": ("smgp", "telecom", "189"), "sgip": ("sgip", "unicom", "130")}
LOGIN = {"cmpp": "901234", "smgp": "90123456", "sgip": "hotline"}


def carrier_config(protocol: str, sim, secret: str = "secret", **overrides) -> SmscConfig:
    """The [smsc:NAME] a center would write for this simulator."""
    kind, carrier, _segment = PROTOCOLS[protocol]
    fields = dict(name=kind, endpoint=f"tcp:host=127.0.0.1:port={sim.port}",
                  system_id=LOGIN[kind], password=secret, system_type="",
                  bind_mode="transceiver", binds=1, window=16, throughput=0.0,
                  response_timeout=3.0, enquire_link=30.0, prefixes=(),
                  source_addr="1069012329", reconnect_min=0.2, reconnect_max=1.0,
                  protocol=protocol, carriers=(carrier,), service_id="HPF")
    if kind == "sgip":
        fields.update(listen=f"tcp:{sim.sp_port}:interface=127.0.0.1", smg_login="smg",
                      smg_password="secret", node_id=3020099999, corp_id="12345")
    fields.update(overrides)
    return SmscConfig(**fields)


def start_sim(protocol: str, log_dir, **knobs):
    kind = PROTOCOLS[protocol][0]
    if kind == "sgip":
        sp_port = free_port()
        sim = start_carrier_sim(kind, log_dir, sp_port=sp_port, **knobs)
        sim.sp_port = sp_port
        return sim
    return start_carrier_sim(kind, log_dir, **knobs)


def run_stack(protocol, sim, tmp_path, body, config=None, core=None, timeout=60):
    """Run ``await body(stack)`` on a fresh reactor with the stack started, then stop it."""
    cfg = config or carrier_config(protocol, sim)

    async def go(reactor):
        smscs = cfg if isinstance(cfg, list) else [cfg]
        stack = Stack(reactor, f"sqlite:///{tmp_path / 'o.db'}", smscs, core=core,
                      window=sum(s.window for s in smscs), source="1069012329")
        await stack.start()
        try:
            return await body(stack)
        finally:
            await stack.stop()

    return run_on_fresh_reactor(go, timeout=timeout)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_single_and_long_ucs2_delivered_with_reports(protocol, log_dir, tmp_path):
    """Login, then 5 single and 2 three-part UCS2 messages: every part submitted once, every
    report matched to its part (by Msg_Id, MsgID or the SGIP sequence), all delivered."""
    segment = PROTOCOLS[protocol][2]
    sim = start_sim(protocol, log_dir)
    try:
        async def body(stack):
            await stack.accept(5, SHORT, segment)
            await stack.accept(2, LONG, segment, start=100)
            return await stack.until_final(7), stack.router.routes()

        counts, routes = run_stack(protocol, sim, tmp_path, body)
        stats = sim.stats()
    finally:
        sim.stop()
    assert counts == {DELIVERED: 7}
    assert stats["logins"] >= 1 and stats["distinct_accepted"] == 5 + 2 * 3
    assert stats["duplicates"] == 0
    kind, carrier, _ = PROTOCOLS[protocol]
    assert routes["carriers"] == {carrier: {kind: 11}}
    assert routes["routes"][kind]["ok"] == 11
    long_parts = [s for s in stats["last_submits"] if s["content_hex"].startswith("050003")]
    assert long_parts and all(_udhi(s) for s in long_parts)  # concatenation marks as parsed


def _udhi(submit: dict) -> bool:
    """The simulator saw the part flagged as carrying a UDH (a field or SMGP's TLV)."""
    return submit.get("tp_udhi", submit.get("tlvs", {}).get("tp_udhi")) == 1


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_refused_login_backs_off_then_sends(protocol, log_dir, tmp_path):
    """A wrong secret (or a refused login) gives a clear error and the link's backoff, not a
    loop; once the gateway accepts, the message accepted meanwhile goes out."""
    segment = PROTOCOLS[protocol][2]
    sim = start_sim(protocol, log_dir, reject_logins=3)
    try:
        async def body(stack):
            await stack.accept(1, SHORT, segment)
            await sleep(stack.reactor, 0.3)
            link = stack.router._smscs[0].binds[0].tx
            seen = (link.state, link.last_error)
            counts = await stack.until_final(1, timeout=20)
            return seen, counts, link.failures

        seen, counts, failures = run_stack(protocol, sim, tmp_path, body)
        stats = sim.stats()
    finally:
        sim.stop()
    assert seen[0] != "up" and "refused" in seen[1]
    assert counts == {DELIVERED: 1}
    assert failures == 3 and stats["logins_refused"] == 3


@pytest.mark.parametrize("protocol", ["cmpp3", "cmpp2", "smgp", "sgip"])
def test_wrong_secret_never_loops(protocol, log_dir, tmp_path):
    """With a wrong shared secret the login fails with the gateway's status named, and the
    link retries on its doubling backoff: a handful of tries in two seconds, not hundreds."""
    sim = start_sim(protocol, log_dir)
    try:
        async def body(stack):
            await sleep(stack.reactor, 2.0)
            link = stack.router._smscs[0].binds[0].tx
            return link.state, link.last_error, link.failures

        state, error, failures = run_stack(
            protocol, sim, tmp_path, body,
            config=carrier_config(protocol, sim, secret="wrong"))
        refused = sim.stats()["logins_refused"]
    finally:
        sim.stop()
    why = "wrong login or password" if protocol == "sgip" else "wrong secret"
    assert state != "up" and why in error
    assert 2 <= failures <= 5 and refused == failures


@pytest.mark.parametrize("protocol", ["cmpp3", "smgp"])
def test_impostor_gateway_is_refused(protocol, log_dir, tmp_path):
    """A gateway that accepts the login but cannot prove the shared secret (its
    authenticator does not verify) is never used: no message is submitted to it."""
    segment = PROTOCOLS[protocol][2]
    sim = start_sim(protocol, log_dir, wrong_authenticator=True)
    try:
        async def body(stack):
            await stack.accept(1, SHORT, segment)
            await sleep(stack.reactor, 1.5)
            link = stack.router._smscs[0].binds[0].tx
            return link.state, link.last_error, await stack.outbox.counts()

        state, error, counts = run_stack(protocol, sim, tmp_path, body)
        submits = sim.stats()["submits"]
    finally:
        sim.stop()
    assert state != "up" and "does not verify" in error
    assert submits == 0 and counts.get(DELIVERED, 0) == 0


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_mo_keyword_answered_over_the_same_carrier(protocol, log_dir, tmp_path):
    """An MO 'YE' from a registered mobile of the carrier's segment is stored and answered:
    the balance reply goes out over the same carrier's link and is delivered."""
    kind, carrier, _ = PROTOCOLS[protocol]
    core = FakeCore("demo", persons=300)
    mobile = next(p[4] for p in core._persons.values() if carrier_of(p[4]) == carrier)
    sim = start_sim(protocol, log_dir)
    try:
        async def body(stack):
            while stack.router.bound_count() < 1:
                await sleep(stack.reactor, 0.05)
            await _post_mo(stack.reactor, sim, mobile, "1069012329", "YE")
            await stack.until_final(1)
            return await stack.db.run(lambda s: s.execute(
                select(SmsMessage.template, SmsMessage.state, SmsPart.smsc).join(
                    SmsPart, SmsPart.message_id == SmsMessage.id)).all())

        rows = run_stack(protocol, sim, tmp_path, body, core=core)
        stats = sim.stats()
    finally:
        sim.stop()
    assert [(r.template, r.state, r.smsc) for r in rows] == [("balance_reply", DELIVERED, kind)]
    assert stats["mo_acked"] == 1


async def _post_mo(reactor, sim, source, destination, body):
    return await _in_thread(reactor, sim.mo, source, destination, body)


async def _in_thread(reactor, fn, *args, **kw):
    """A blocking call to a simulator's control port, off the reactor."""
    from twisted.internet.threads import deferToThreadPool

    return await deferToThreadPool(reactor, reactor.getThreadPool(), fn, *args, **kw)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("faults", [
    {"report_before_resp": True},
    {"flow_control_every": 10, "flow_control_burst": 4},
    {"cut_after_submits": 30, "cut_hold": 16, "latency_ms": 10},
    {"cut_after_submits": 30, "cut_hold": 16, "latency_ms": 10, "report_delay_ms": 1500},
], ids=["report-before-response", "flow-control-bursts", "cut-with-full-window",
        "cut-with-reports-due"])
def test_faults_every_message_final_once(protocol, faults, log_dir, tmp_path):
    """Under each fault, all 60 accepted messages (40 single, 20 parts of long ones) end
    delivered, none lost; only a cut may resend, and never more than the window. A cut
    while the gateway still owes reports for answered parts loses none of them: they come
    after the next login (the kill -9 crash test's reports, made deterministic)."""
    segment = PROTOCOLS[protocol][2]
    sim = start_sim(protocol, log_dir, **faults)
    try:
        async def body(stack):
            await stack.accept(40, SHORT, segment)
            await stack.accept(20, LONG, segment, start=100)
            return await stack.until_final(60, timeout=60)

        counts = run_stack(protocol, sim, tmp_path, body, timeout=90)
        stats = sim.stats()
    finally:
        sim.stop()
    assert counts == {DELIVERED: 60}
    assert stats["distinct_accepted"] == 40 + 20 * 3
    if "cut_after_submits" in faults:
        assert stats["cuts"] == 1 and stats["duplicates"] <= 16
    else:
        assert stats["duplicates"] == 0
    if "flow_control_every" in faults:
        assert stats["flow_controlled"] > 0


def test_a_carrier_link_down_fails_over_to_the_aggregator(log_dir, tmp_path):
    """China Mobile numbers go to the CMPP link while it is up; with its login refused they
    fail over to the SMPP aggregator route, and a China Telecom number (no carrier link
    configured for it) takes the aggregator from the start. All end delivered once."""
    ismg = start_sim("cmpp3", log_dir)
    smsc = start_sim_smsc(log_dir)
    try:
        aggregator = replace(carrier_config("cmpp3", ismg), name="agg", protocol="smpp",
                             endpoint=f"tcp:host=127.0.0.1:port={smsc.port}",
                             system_id="hotline", password="secret", carriers=(), window=10)

        async def body(stack):
            await stack.accept(5, SHORT, "138")
            await stack.accept(5, SHORT, "189", start=10)
            await stack.until_final(10)
            before = dict(stack.router.routes()["carriers"])
            # The ISMG refuses every login from now on, and cuts the link once.
            await _in_thread(stack.reactor, ismg.configure, reject_logins=1000)
            stack.router._smscs[0].binds[0].tx.protocol.transport.loseConnection()
            await sleep(stack.reactor, 0.5)
            await stack.accept(5, SHORT, "138", start=20)
            counts = await stack.until_final(15)
            return before, stack.router.routes()["carriers"], counts

        before, after, counts = run_stack(
            "cmpp3", ismg, tmp_path, body,
            config=[replace(carrier_config("cmpp3", ismg), name="cmcc"), aggregator])
        ismg_stats, smsc_stats = ismg.stats(), smsc.stats()
    finally:
        ismg.stop()
        smsc.stop()
    assert counts == {DELIVERED: 15}
    assert before == {"mobile": {"cmcc": 5}, "telecom": {"agg": 5}}
    assert after == {"mobile": {"cmcc": 5, "agg": 5}, "telecom": {"agg": 5}}
    assert ismg_stats["distinct_accepted"] == 5 and smsc_stats["distinct_accepted"] == 10


def test_gbk_where_the_carrier_wants_it(log_dir, tmp_path):
    """``text_format = gbk``: the ISMG receives Msg_Fmt 15 with GBK octets (the long
    message's UDH kept, TP_udhi set), and every part is still delivered once."""
    sim = start_sim("cmpp3", log_dir)
    try:
        async def body(stack):
            await stack.accept(1, SHORT, "138")
            await stack.accept(1, LONG, "138", start=10)
            return await stack.until_final(2)

        counts = run_stack("cmpp3", sim, tmp_path, body,
                           config=replace(carrier_config("cmpp3", sim), gbk=True))
        stats = sim.stats()
    finally:
        sim.stop()
    assert counts == {DELIVERED: 2} and stats["distinct_accepted"] == 1 + 3
    submits = stats["last_submits"]
    assert {s["msg_fmt"] for s in submits} == {15}
    single = next(s for s in submits if s["tp_udhi"] == 0)
    assert bytes.fromhex(single["content_hex"]).decode("gbk") == SHORT
    assert all(s["content_hex"].startswith("050003") for s in submits if s["tp_udhi"] == 1)


# ---- SGIP: unbind after idle (no keep-alive), parked until a message needs the link ------


def test_idle_link_unbinds_closes_and_a_later_message_binds_again(log_dir, tmp_path):
    """idle (0.5 s) after a delivered message: the SP's link sends Unbind, the SMG answers
    and the connection closes; the link stays parked (one login in 2 s, no loop) and so
    does the listener's side (it unbinds the SMG's idle connection); the next message
    binds again and is delivered with its report."""
    sim = start_sim("sgip", log_dir, callback_idle_ms=60_000)
    config = carrier_config("sgip", sim, idle=0.5)
    try:
        async def body(stack):
            await stack.accept(1, SHORT, "130")
            first = await stack.until_final(1)
            await sleep(stack.reactor, 2.0)
            bind = stack.router._smscs[0].binds[0]
            parked = (bind.state, bind.ready, bind.tx.last_error, sim.stats())
            await stack.accept(1, SHORT, "130", start=1)
            second = await stack.until_final(2)
            return first, parked, second

        first, parked, second = run_stack("sgip", sim, tmp_path, body, config=config)
        stats = sim.stats()
    finally:
        sim.stop()
    assert first == {DELIVERED: 1}
    state, ready, last_error, during = parked
    assert (state, ready, last_error) == ("parked", True, None)
    assert during["unbinds"] == 1 and during["sessions"] == 0 and during["logins"] == 1
    assert during["callback_unbinds_received"] == 1 and during["reports_acked"] == 1
    assert second == {DELIVERED: 2}
    assert stats["logins"] == 2 and stats["reports_acked"] == 2
    assert stats["distinct_accepted"] == 2 and stats["duplicates"] == 0


def test_smg_idle_unbind_parks_the_link_and_a_later_message_binds_again(log_dir, tmp_path):
    """The SMG unbinds the SP's link after its own idle time (0.5 s, shorter than ours):
    answered, closed, parked, not reconnected; the next message binds again and is
    delivered with its report."""
    sim = start_sim("sgip", log_dir, sp_idle_ms=500)
    config = carrier_config("sgip", sim, idle=30.0)
    try:
        async def body(stack):
            await stack.accept(1, SHORT, "130")
            await stack.until_final(1)
            await sleep(stack.reactor, 2.0)
            bind = stack.router._smscs[0].binds[0]
            parked = (bind.state, bind.ready, bind.tx.last_error, sim.stats())
            await stack.accept(1, SHORT, "130", start=1)
            return parked, await stack.until_final(2)

        parked, counts = run_stack("sgip", sim, tmp_path, body, config=config)
        stats = sim.stats()
    finally:
        sim.stop()
    state, ready, last_error, during = parked
    assert (state, ready, last_error) == ("parked", True, None)
    assert during["idle_unbinds_sent"] == 1 and during["idle_unbind_resps"] == 1
    assert during["logins"] == 1 and during["sessions"] == 0
    assert counts == {DELIVERED: 2}
    assert stats["logins"] == 2 and stats["reports_acked"] == 2 and stats["duplicates"] == 0
