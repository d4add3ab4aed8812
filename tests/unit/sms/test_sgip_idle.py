"""SGIP's "unbind after idle" in memory: the SP's link to the SMG unbinds when it has had
nothing to send, parks (no reconnect) and binds again when the router has a part for it;
an Unbind from the SMG parks it too; the listener unbinds the SMG's idle connections. No
part is lost across an Unbind, and a parked link is not reported as down."""
from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sms.carrier.router import SmppRouter, SubmitPart, Submitted
from sms.config import SmscConfig
from sms.sgip import codec as sgip
from sms.sgip.link import SgipListener
from sms.smpp.protocol import NotBound

NOW = 1_790_000_000
PART = SubmitPart("13000000000", "12329", "您好".encode("utf-16-be"), 8, 0)
SMG_SEQ = sgip.SgipSequence(3020012345, 1130140509, 7)


def sgip_config(**kw) -> SmscConfig:
    fields = dict(name="smg", endpoint="tcp:host=127.0.0.1:port=1", system_id="hotline",
                  password="secret", system_type="", bind_mode="transceiver", binds=1,
                  window=16, throughput=0.0, response_timeout=10.0, enquire_link=30.0,
                  prefixes=(), source_addr="1069012329", protocol="sgip",
                  carriers=("unicom",), listen="tcp:0", smg_login="smg",
                  smg_password="secret", node_id=3020099999)
    fields.update(kw)
    return SmscConfig(**fields)


class _Endpoint:
    """Connects each attempt to a fresh StringTransport at once (or refuses, when told)."""

    def __init__(self):
        self.transports: list[StringTransport] = []
        self.refuse = False

    def connect(self, factory):
        if self.refuse:
            return fail(ConnectionRefusedError())
        transport = StringTransport()
        protocol = factory.buildProtocol(None)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.transports.append(transport)
        return succeed(protocol)

    @property
    def transport(self) -> StringTransport:
        return self.transports[-1]


class _NoListen:
    def listen(self, factory):
        return Deferred()


def frames(transport):
    raw = transport.value()
    transport.clear()
    out, i = [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i:i + 4], "big")
        out.append(sgip.decode(raw[i:i + n]))
        i += n
    return out


def answer(transport, pdu, sequence):
    transport.protocol.dataReceived(sgip.encode(pdu, sequence))


def closed(transport):
    """The TCP connection ends (StringTransport only records loseConnection)."""
    assert transport.disconnecting
    transport.protocol.connectionLost(Failure(ConnectionDone()))


def bound_router(**kw):
    """A router with one SGIP link, bound to the SMG; returns (router, endpoint, clock)."""
    clock = Clock()
    clock.advance(NOW)
    endpoint = _Endpoint()
    router = SmppRouter([sgip_config(**kw)], clock, on_receipt=fail, on_mo=fail,
                        endpoint_for=lambda c: endpoint, listen_for=lambda c: _NoListen())
    router.startService()
    bind_answered(endpoint)
    return router, endpoint, clock


def bind_answered(endpoint):
    [bind] = frames(endpoint.transport)
    assert bind.command_id == sgip.BIND and bind.pdu.login_type == sgip.LOGIN_SP_TO_SMG
    answer(endpoint.transport, sgip.bind_resp(0), bind.sequence)


def state(router):
    [snapshot] = router.states()["smg"].values()
    return snapshot


def test_idle_link_unbinds_then_stays_parked_until_needed():
    """After ``idle`` seconds with nothing to send the SP's link sends Unbind, closes on
    Unbind_Resp, and does not connect again by itself (no bind/unbind loop)."""
    router, endpoint, clock = bound_router()
    assert state(router)["state"] == "up"
    clock.advance(31)  # the default idle is 30 s
    [unbind] = frames(endpoint.transport)
    assert unbind.command_id == sgip.UNBIND
    assert not endpoint.transport.disconnecting  # it waits for the answer
    answer(endpoint.transport, sgip.UnbindResp(), unbind.sequence)
    closed(endpoint.transport)
    clock.advance(600)
    assert len(endpoint.transports) == 1
    assert state(router)["state"] == "parked"


def test_no_unbind_while_a_submit_is_in_flight():
    """A Submit waiting for its answer keeps the link: idle counts from the last request
    sent or answer read, and nothing may be in flight."""
    router, endpoint, clock = bound_router(idle=30.0, response_timeout=60.0)
    transport = endpoint.transport
    clock.advance(20)
    got = []
    router.submit(PART).addCallback(got.append)
    [submit] = frames(transport)
    clock.advance(45)  # 65 s since the bind, 45 s since the Submit, still unanswered
    assert frames(transport) == []
    answer(transport, sgip.submit_resp(0), submit.sequence)
    assert isinstance(got[0], Submitted)
    clock.advance(29)
    assert frames(transport) == []
    clock.advance(31)
    assert [f.command_id for f in frames(transport)] == [sgip.UNBIND]


def park(router, endpoint, clock, idle=30.0):
    clock.advance(idle + 1)
    [unbind] = frames(endpoint.transport)
    answer(endpoint.transport, sgip.UnbindResp(), unbind.sequence)
    closed(endpoint.transport)
    assert state(router)["state"] == "parked"


def test_part_routed_to_a_parked_link_goes_out_after_the_rebind():
    """The router gives a parked link's bind the parts (not NotBound, not a failover):
    the first binds the link again at once, the next one (routed while the Bind is being
    answered) waits too, and both go out on the new connection."""
    router, endpoint, clock = bound_router()
    park(router, endpoint, clock)
    got = []
    router.submit(PART).addCallbacks(got.append, got.append)
    assert len(endpoint.transports) == 2 and state(router)["state"] == "logging in"
    router.submit(PART).addCallbacks(got.append, got.append)
    assert got == []
    bind_answered(endpoint)
    submits = frames(endpoint.transport)
    assert [s.command_id for s in submits] == [sgip.SUBMIT, sgip.SUBMIT]
    for submit in submits:
        answer(endpoint.transport, sgip.submit_resp(0), submit.sequence)
    assert got == [Submitted(str(s.sequence), "smg", "smg-0") for s in submits]
    assert state(router)["state"] == "up"


def test_parked_link_is_not_an_outage_in_stats_or_health():
    """Parked is its own state, counted as taking parts (ready, ``bound_count``, a route's
    ``parked``), with no error recorded and no failed bind."""
    router, endpoint, clock = bound_router()
    park(router, endpoint, clock)
    snapshot = state(router)
    assert (snapshot["state"], snapshot["ready"], snapshot["last_error"],
            snapshot["failed_binds"]) == ("parked", True, None, 0)
    assert router.bound_count() == 1
    route = router.routes()["routes"]["smg"]
    assert (route["bound"], route["parked"]) == (0, 1)
    assert router.has_room(PART.destination) is True


def test_part_crossing_our_unbind_waits_and_goes_after_the_rebind():
    """A part routed while our Unbind waits for its answer is not written on the closing
    connection nor failed: once the link is parked it binds again and sends it."""
    router, endpoint, clock = bound_router()
    clock.advance(31)
    [unbind] = frames(endpoint.transport)
    got = []
    router.submit(PART).addCallbacks(got.append, got.append)
    assert frames(endpoint.transport) == [] and got == []
    answer(endpoint.transport, sgip.UnbindResp(), unbind.sequence)
    closed(endpoint.transport)
    assert len(endpoint.transports) == 2
    bind_answered(endpoint)
    [submit] = frames(endpoint.transport)
    answer(endpoint.transport, sgip.submit_resp(0), submit.sequence)
    assert isinstance(got[0], Submitted)


def test_smg_unbind_crossing_a_submit_is_answered_and_the_submit_kept():
    """The SMG's Unbind crossing our Submit: we answer Unbind_Resp, send nothing more on
    that connection, keep reading until the Submit is answered, then close and park,
    not reconnecting and recording no error."""
    router, endpoint, clock = bound_router()
    transport = endpoint.transport
    got = []
    router.submit(PART).addCallbacks(got.append, got.append)
    [submit] = frames(transport)
    answer(transport, sgip.Unbind(), SMG_SEQ)
    [resp] = frames(transport)
    assert (resp.command_id, resp.sequence) == (sgip.UNBIND_RESP, SMG_SEQ)
    assert not transport.disconnecting
    second = []
    router.submit(PART).addCallbacks(second.append, second.append)
    assert frames(transport) == []  # not on the connection the SMG is closing
    answer(transport, sgip.submit_resp(0), submit.sequence)
    assert isinstance(got[0], Submitted)
    closed(transport)
    # The second part waited, and takes the link back up.
    assert len(endpoint.transports) == 2
    bind_answered(endpoint)
    [again] = frames(endpoint.transport)
    answer(endpoint.transport, sgip.submit_resp(0), again.sequence)
    assert isinstance(second[0], Submitted)
    assert state(router)["last_error"] is None


def test_smg_unbind_of_an_idle_link_parks_it():
    """An Unbind from the SMG on an idle link: answered, closed, parked; no reconnect."""
    router, endpoint, clock = bound_router()
    answer(endpoint.transport, sgip.Unbind(), SMG_SEQ)
    [resp] = frames(endpoint.transport)
    assert resp.command_id == sgip.UNBIND_RESP
    closed(endpoint.transport)
    clock.advance(600)
    assert len(endpoint.transports) == 1
    snapshot = state(router)
    assert (snapshot["state"], snapshot["ready"], snapshot["last_error"]) == (
        "parked", True, None)


def test_parked_link_that_cannot_bind_again_fails_its_parts_for_a_retry():
    """When the SMG does not take the new connection, the parts that woke the link fail
    with NotBound (the outbox retries them) after response_timeout; the link is then down,
    reconnecting with its backoff."""
    router, endpoint, clock = bound_router()
    park(router, endpoint, clock)
    endpoint.refuse = True
    got = []
    router.submit(PART).addCallbacks(got.append, got.append)
    clock.advance(9)
    assert got == []
    clock.advance(1)
    assert got[0].check(NotBound)
    assert state(router)["state"] == "down" and not state(router)["ready"]


def test_idle_zero_never_unbinds():
    """``idle = 0`` keeps the link bound however quiet it is."""
    router, endpoint, clock = bound_router(idle=0.0)
    clock.advance(3600)
    assert frames(endpoint.transport) == [] and state(router)["state"] == "up"


def listener_side(on_deliver=None, idle=30.0):
    clock = Clock()
    clock.advance(NOW)
    listener = SgipListener(sgip_config(idle=idle), clock,
                            on_deliver or (lambda pdu: succeed(None)), endpoint=_NoListen())
    protocol = listener.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(sgip.encode(sgip.Bind(sgip.LOGIN_SMG_TO_SP, "smg", "secret"),
                                      SMG_SEQ))
    [resp] = frames(transport)
    assert resp.pdu.result == 0
    return protocol, transport, clock


def test_listener_unbinds_an_idle_smg_connection():
    """The SMG's connection to the listener, idle for ``idle`` seconds after its last
    Report, is unbound by the SP: Unbind, Unbind_Resp, closed."""
    protocol, transport, clock = listener_side()
    clock.advance(20)
    report = sgip.Report(SMG_SEQ, "8613000000000", sgip.STATE_DELIVERED)
    protocol.dataReceived(sgip.encode(report, sgip.SgipSequence(3020012345, 1130140509, 8)))
    clock.advance(0)
    assert [f.command_id for f in frames(transport)] == [sgip.REPORT_RESP]
    clock.advance(29)
    assert frames(transport) == []
    clock.advance(2)
    [unbind] = frames(transport)
    assert unbind.command_id == sgip.UNBIND and not transport.disconnecting
    protocol.dataReceived(sgip.encode(sgip.UnbindResp(), unbind.sequence))
    assert transport.disconnecting


def test_listener_keeps_a_connection_whose_deliver_is_being_handled():
    """A Deliver still being committed (its answer not yet sent) is in flight: no Unbind
    until it is answered and the connection has been idle again."""
    pending: Deferred = Deferred()
    protocol, transport, clock = listener_side(on_deliver=lambda pdu: pending)
    deliver = sgip.Deliver("8613000000000", "1069012329", b"YE")
    protocol.dataReceived(sgip.encode(deliver, sgip.SgipSequence(3020012345, 1130140509, 9)))
    clock.advance(100)
    assert frames(transport) == []
    pending.callback(None)
    assert [f.command_id for f in frames(transport)] == [sgip.DELIVER_RESP]
    clock.advance(31)
    assert [f.command_id for f in frames(transport)] == [sgip.UNBIND]


def test_listener_answers_the_smg_unbind_and_closes():
    """The SMG's Unbind on its connection to the listener is answered and the connection
    closed."""
    protocol, transport, clock = listener_side()
    protocol.dataReceived(sgip.encode(sgip.Unbind(), SMG_SEQ))
    [resp] = frames(transport)
    assert (resp.command_id, resp.sequence) == (sgip.UNBIND_RESP, SMG_SEQ)
    assert transport.disconnecting



def test_idle_rule_waits_an_idle_time_while_its_probe_is_unanswered():
    """While the idle action (a probe, SGIP's Unbind) waits longer than ``idle`` for its
    answer, the rule looks again an idle time later, not every millisecond (it did)."""
    from sms.carrier.keepalive import IdleProbe

    clock = Clock()
    probes: list[Deferred] = []

    def probe() -> Deferred:
        probes.append(Deferred())
        return probes[-1]

    rule = IdleProbe(clock, 1.0, probe, lambda failure: None)
    rule.start()
    clock.advance(1.0)
    assert len(probes) == 1
    clock.advance(1.0)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [3.0]
    probes[0].callback(None)
    clock.advance(1.0)
    assert len(probes) == 2
