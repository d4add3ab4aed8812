"""The carrier protocols' Twisted layer in memory: CMPP, SMGP and SGIP over StringTransport
with a Clock, their logins, the SGIP listener's Bind check, text for carriers, and
routing by number segment."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sms.carrier import text
from sms.carrier.binary_pdu import FrameSplitter
from sms.carrier.protocol import CarrierProtocol, LoginRefused, Unencodable
from sms.carrier.router import SmppRouter, Submitted, SubmitPart
from sms.carrier.send_journal import SendJournal
from sms.cmpp import codec as cmpp
from sms.cmpp.link import CmppLink
from sms.cmpp.protocol import CmppProtocol
from sms.config import SmscConfig
from sms.sgip import codec as sgip
from sms.sgip.link import SgipLink, SgipListener
from sms.sgip.protocol import SgipProtocol
from sms.smgp import codec as smgp
from sms.smgp.link import SmgpLink
from sms.smgp.protocol import SmgpProtocol
from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled


def connected(protocol):
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def frames(transport, decode):
    """The frames written so far (then cleared)."""
    raw = transport.value()
    transport.clear()
    out, i = [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i:i + 4], "big")
        out.append(decode(raw[i:i + n]))
        i += n
    return out


def cmpp_submit(n: int = 1) -> cmpp.Submit:
    return cmpp.Submit(("13800000000",), "您好".encode("utf-16-be"), src_id="1069012329",
                       msg_fmt=8, msg_src="901234", registered_delivery=1)


def cmpp_proto(**kw):
    clock = Clock()
    proto, transport = connected(CmppProtocol(clock, response_timeout=10, **kw))
    return proto, transport, clock


def decode30(raw):
    return cmpp.decode(raw, cmpp.V30)


MSG_ID = cmpp.MsgId(11, 30, 14, 5, 9, 123456, 7)


def test_cmpp_responses_matched_by_sequence_in_any_order():
    """Two SUBMITs answered in reverse order each get their own SUBMIT_RESP's Msg_Id."""
    proto, transport, _ = cmpp_proto()
    got = []
    proto.request(cmpp_submit(), "submit").addCallback(lambda r: got.append(("a", r.msg_id)))
    proto.request(cmpp_submit(), "submit").addCallback(lambda r: got.append(("b", r.msg_id)))
    sent = frames(transport, decode30)
    assert [f.sequence for f in sent] == [1, 2]
    other = cmpp.MsgId(11, 30, 14, 5, 9, 123456, 8)
    proto.dataReceived(cmpp.encode(cmpp.SubmitResp(other, 0), 2)
                       + cmpp.encode(cmpp.SubmitResp(MSG_ID, 0), 1))
    assert got == [("b", other), ("a", MSG_ID)]
    assert proto.pending_count == 0


def test_cmpp_flow_control_result_is_throttled_and_other_results_permanent():
    """Result 8 is flow control (Throttled, retried like ESME_RTHROTTLED); 13 is permanent."""
    proto, transport, _ = cmpp_proto()
    errors = []
    proto.request(cmpp_submit(), "submit").addErrback(errors.append)
    proto.request(cmpp_submit(), "submit").addErrback(errors.append)
    proto.dataReceived(cmpp.encode(cmpp.SubmitResp(cmpp.ZERO_MSG_ID, 8), 1)
                       + cmpp.encode(cmpp.SubmitResp(cmpp.ZERO_MSG_ID, 13), 2))
    assert errors[0].check(Throttled) and errors[0].value.status == 8
    assert not errors[1].check(Throttled) and errors[1].value.status == 13


def test_cmpp_request_times_out_on_the_clock():
    """A SUBMIT never answered fails with SmppTimeout after response_timeout, alone."""
    proto, _transport, clock = cmpp_proto()
    errors = []
    proto.request(cmpp_submit(), "submit").addErrback(errors.append)
    clock.advance(9.9)
    assert not errors
    clock.advance(0.2)
    assert errors[0].check(SmppTimeout) and proto.pending_count == 0 and proto.connected


def test_cmpp_connection_lost_fails_every_pending_request():
    """A lost link fails what was pending with LinkLost (the outbox resends it)."""
    proto, _transport, _ = cmpp_proto()
    errors = []
    for _ in range(3):
        proto.request(cmpp_submit(), "submit").addErrback(errors.append)
    proto.connectionLost(None)
    assert len(errors) == 3 and all(e.check(LinkLost) for e in errors)


def test_cmpp_unencodable_part_fails_alone_for_good():
    """A part the codec refuses (a destination that is not digits) fails as a permanent
    error and nothing is written; the link stays up."""
    proto, transport, _ = cmpp_proto()
    errors = []
    bad = replace(cmpp_submit(), dest_terminal_ids=("not-a-number",))
    proto.request(bad, "submit").addErrback(errors.append)
    assert errors[0].check(Unencodable) and transport.value() == b"" and proto.connected


def test_cmpp_active_test_from_the_ismg_is_answered():
    """The ISMG's ACTIVE_TEST gets an ACTIVE_TEST_RESP with its Sequence_Id."""
    proto, transport, _ = cmpp_proto()
    proto.dataReceived(cmpp.encode(cmpp.ActiveTest(), 77))
    [resp] = frames(transport, decode30)
    assert resp.command_id == cmpp.ACTIVE_TEST_RESP and resp.sequence == 77


def test_cmpp_idle_link_probed_and_dropped_after_three_silent_active_tests():
    """After 3 idle minutes an ACTIVE_TEST goes out; three unanswered (60 s each) drop the
    link, as the specification's C = 3 min, T = 60 s, N = 3."""
    proto, transport, clock = cmpp_proto()
    clock.advance(179)
    assert transport.value() == b""
    clock.advance(1)
    tests = frames(transport, decode30)
    assert [f.command_id for f in tests] == [cmpp.ACTIVE_TEST]
    clock.advance(60)
    clock.advance(60)
    assert not transport.disconnecting
    clock.advance(60)
    assert transport.disconnecting


def test_cmpp_answered_active_test_keeps_the_link():
    """An answered ACTIVE_TEST resets the count: the link stays up."""
    proto, transport, clock = cmpp_proto()
    clock.advance(180)
    [probe] = frames(transport, decode30)
    proto.dataReceived(cmpp.encode(cmpp.ActiveTestResp(), probe.sequence))
    clock.advance(180 * 3)
    assert not transport.disconnecting


def test_cmpp_deliver_acknowledged_only_after_the_handler_committed():
    """A status report is answered (result 0) once the handler's Deferred fires; a failed
    handler answers 8 so the ISMG sends it again."""
    handled: list[Deferred] = []

    def on_deliver(pdu):
        handled.append(Deferred())
        return handled[-1]

    proto, transport, clock = cmpp_proto(on_deliver=on_deliver)
    report = cmpp.Report(MSG_ID, "DELIVRD", "2611301405", "2611301405", "13800000000", 1)
    deliver = cmpp.Deliver(cmpp.MsgId(11, 30, 14, 5, 9, 123456, 99), "1069012329", "13800000000",
                           report=report)
    proto.dataReceived(cmpp.encode(deliver, 5) + cmpp.encode(deliver, 6))
    clock.advance(0)
    assert len(handled) == 2 and transport.value() == b""
    handled[0].callback(None)
    handled[1].errback(RuntimeError("database down"))
    answers = frames(transport, decode30)
    assert [(f.sequence, f.pdu.result) for f in answers] == [(5, 0), (6, 8)]


def test_cmpp_malformed_deliver_fails_alone():
    """A DELIVER whose body does not decode is answered with result 1 (bad structure); the
    SUBMIT_RESP read right behind it still reaches its request."""
    proto, transport, _ = cmpp_proto(on_deliver=lambda pdu: succeed(None))
    got = []
    proto.request(cmpp_submit(), "submit").addCallback(got.append)
    transport.clear()
    garbage = (20).to_bytes(4, "big") + cmpp.DELIVER.to_bytes(4, "big") + (9).to_bytes(4, "big")
    garbage += b"\0" * 8
    proto.dataReceived(garbage + cmpp.encode(cmpp.SubmitResp(MSG_ID, 0), 1))
    [answer] = frames(transport, decode30)
    assert answer.sequence == 9 and answer.pdu.result == cmpp.RESULT_BAD_STRUCTURE
    assert got and got[0].msg_id == MSG_ID and proto.connected and proto.malformed == 1


def test_cmpp_terminate_from_the_ismg_is_answered_and_closes():
    """TERMINATE gets TERMINATE_RESP and the connection closes (the link reconnects)."""
    proto, transport, _ = cmpp_proto()
    proto.dataReceived(cmpp.encode(cmpp.Terminate(), 3))
    [resp] = frames(transport, decode30)
    assert resp.command_id == cmpp.TERMINATE_RESP and transport.disconnecting


def test_cmpp_terminate_on_stop_waits_for_the_answer_then_closes():
    """Our TERMINATE on stop: the connection closes once TERMINATE_RESP comes."""
    proto, transport, _ = cmpp_proto()
    done = []
    proto.terminate().addCallback(done.append)
    [term] = frames(transport, decode30)
    assert term.command_id == cmpp.TERMINATE and not transport.disconnecting
    proto.dataReceived(cmpp.encode(cmpp.TerminateResp(), term.sequence))
    assert done == [None] and transport.disconnecting


def carrier_config(protocol="cmpp3", **kw) -> SmscConfig:
    fields = dict(name="ismg", endpoint="tcp:host=127.0.0.1:port=1", system_id="901234",
                  password="secret", system_type="", bind_mode="transceiver", binds=1,
                  window=16, throughput=0.0, response_timeout=10.0, enquire_link=30.0,
                  prefixes=(), source_addr="1069012329", protocol=protocol,
                  carriers=("mobile",))
    fields.update(kw)
    return SmscConfig(**fields)


def cmpp_login(status=0, secret="secret", version=cmpp.V30):
    """Run CmppLink.log_in against an ISMG answering ``status`` (its authenticator made
    with ``secret``); returns the failure or None."""
    clock = Clock()
    clock.advance(1_790_000_000)
    link = CmppLink("ismg-0", None, carrier_config("cmpp3" if version == cmpp.V30 else "cmpp2"),
                    clock)
    proto, transport = connected(link.build_protocol())
    outcome = []
    link.log_in(proto).addCallbacks(outcome.append, outcome.append)
    [connect] = frames(transport, lambda raw: cmpp.decode(raw, version))
    auth = cmpp.authenticator_ismg(status, connect.pdu.authenticator, secret, version)
    proto.dataReceived(cmpp.encode(cmpp.ConnectResp(status, auth, version), connect.sequence,
                                   version))
    assert cmpp.check_connect(connect.pdu, "secret") and connect.pdu.version == version
    return outcome[0]


def test_cmpp_login_accepted_when_the_ismg_proves_the_secret():
    """CONNECT with the right authenticator; a status 0 whose AuthenticatorISMG verifies
    logs in (3.0 and 2.0)."""
    assert cmpp_login() is None
    assert cmpp_login(version=cmpp.V20) is None


def test_cmpp_login_refused_names_the_reason():
    """Status 3 is a wrong secret: LoginRefused says so (the link backs off on it)."""
    failure = cmpp_login(status=3)
    assert failure.check(LoginRefused) and "wrong secret" in failure.getErrorMessage()


def test_cmpp_login_refused_when_the_ismg_authenticator_does_not_verify():
    """An ISMG that accepts but cannot prove the shared secret is refused (an impostor)."""
    failure = cmpp_login(secret="not-the-secret")
    assert failure.check(LoginRefused) and "does not verify" in failure.getErrorMessage()


def test_cmpp_submit_pdu_from_a_long_ucs2_part_carries_udhi_and_pk_fields():
    """A part of a long UCS2 message goes out with TP_udhi 1, Pk_total/Pk_number from its
    UDH, Msg_Fmt 8 and the configured Service_Id; GBK where configured is Msg_Fmt 15."""
    enc = text.encode("【示例公积金】" + "您的公积金贷款本期还款已入账。" * 10)
    part = SubmitPart("13800000000", "12329", enc.parts[1], enc.data_coding, enc.esm_class)
    config = carrier_config(service_id="HPF")
    pdu = CmppLink.submit_pdu(part, config)
    assert (pdu.tp_udhi, pdu.pk_total, pdu.pk_number, pdu.msg_fmt) == (1, enc.part_count, 2, 8)
    assert pdu.src_id == "1069012329" and pdu.service_id == "HPF" and pdu.msg_src == "901234"
    gbk = CmppLink.submit_pdu(part, replace(config, gbk=True))
    assert gbk.msg_fmt == 15 and gbk.content[:6] == enc.parts[1][:6]
    assert gbk.content[6:].decode("gbk") == enc.parts[1][6:].decode("utf-16-be")


def test_smgp_system_busy_is_throttled_and_deliver_answered():
    """SMGP status 1 (system busy) is flow control; a Deliver is answered after commit."""
    clock = Clock()
    proto, transport = connected(SmgpProtocol(clock, on_deliver=lambda pdu: succeed(None)))
    errors = []
    proto.request(smgp.Submit(("18900000000",), b"hi"), "submit").addErrback(errors.append)
    [submit] = frames(transport, smgp.decode)
    msg_id = smgp.MsgId.from_parts(123456, 11, 30, 14, 5, 1)
    proto.dataReceived(smgp.encode(smgp.SubmitResp(smgp.ZERO_MSG_ID, 1), submit.sequence)
                       + smgp.encode(smgp.Deliver(msg_id, "18900000000", "1069012329",
                                                  b"YE"), 40))
    clock.advance(0)
    assert errors[0].check(Throttled)
    [answer] = frames(transport, smgp.decode)
    assert answer.sequence == 40 and answer.pdu.msg_id == msg_id and answer.pdu.status == 0


def test_sgip_submit_answer_carries_its_sequence_as_the_message_id():
    """SGIP's Submit_Resp has no id: the Submit's own sequence number is what the Report
    names, so the link reports it as the part's message id."""
    clock = Clock()
    clock.advance(1_790_000_000)
    proto, transport = connected(SgipProtocol(clock, node_id=3020099999))
    got = []
    proto.request(sgip.Submit(("8613000000000",), b"hi"), "submit").addCallback(got.append)
    [submit] = frames(transport, sgip.decode)
    assert submit.sequence.node_id == 3020099999
    proto.dataReceived(sgip.encode(sgip.submit_resp(0), submit.sequence))
    assert SgipLink.message_id(got[0]) == str(submit.sequence)


def test_sgip_connections_of_one_node_never_number_two_submits_alike():
    """A Report names its Submit by (node id, second, counter) and nothing else: a link's
    next connection (after a cut) and an account's other connections, in the same second,
    go on counting where the node's numbering is, so no two Submits share a name and no
    report settles the wrong part (each connection counting from 1 did)."""
    clock = Clock()
    clock.advance(1_790_000_000)
    config = carrier_config("sgip", name="smg", node_id=3020077777, carriers=("unicom",))
    links = [SgipLink(f"smg-{i}", None, config, clock) for i in range(2)]
    protocols = [links[0].build_protocol(), links[0].build_protocol(), links[1].build_protocol()]
    names = []
    for proto in protocols:
        proto, transport = connected(proto)
        for _ in range(2):
            proto.request(sgip.Submit(("8613000000000",), b"hi"), "submit")
        names += [str(f.sequence) for f in frames(transport, sgip.decode)]
    assert len(set(names)) == len(names) == 6


def sgip_listener_proto(on_deliver=None):
    config = carrier_config("sgip", name="smg", system_id="hotline", smg_login="smg",
                            smg_password="secret", listen="tcp:0", node_id=3020099999,
                            carriers=("unicom",))
    clock = Clock()
    listener = SgipListener(config, clock, on_deliver or (lambda pdu: succeed(None)),
                            endpoint=object())
    return connected(listener.buildProtocol(None))


SEQ = sgip.SgipSequence(3020012345, 1130140509, 1)


def test_sgip_listener_refuses_a_wrong_smg_login():
    """The SMG's Bind with a wrong password gets result 1 and the connection closes."""
    proto, transport = sgip_listener_proto()
    proto.dataReceived(sgip.encode(sgip.Bind(sgip.LOGIN_SMG_TO_SP, "smg", "guess"), SEQ))
    [resp] = frames(transport, sgip.decode)
    assert resp.pdu.result == sgip.RESULT_BAD_LOGIN and transport.disconnecting


def test_sgip_listener_refuses_reports_before_a_bind():
    """A Report before any Bind is refused and the connection closed: nothing is applied."""
    seen = []
    proto, transport = sgip_listener_proto(on_deliver=lambda pdu: seen.append(pdu))
    report = sgip.Report(SEQ, "8613000000000", sgip.STATE_DELIVERED)
    proto.dataReceived(sgip.encode(report, SEQ))
    [resp] = frames(transport, sgip.decode)
    assert resp.pdu.result == sgip.RESULT_BAD_LOGIN and transport.disconnecting and not seen


def test_sgip_listener_answers_report_and_deliver_after_a_good_bind():
    """After the SMG's Bind (login type 2, right name and password) its Report and Deliver
    go to the handler and are answered with result 0."""
    seen = []
    proto, transport = sgip_listener_proto(on_deliver=lambda pdu: seen.append(pdu))
    clock = proto.clock
    seq2, seq3 = replace(SEQ, counter=2), replace(SEQ, counter=3)
    proto.dataReceived(sgip.encode(sgip.Bind(sgip.LOGIN_SMG_TO_SP, "smg", "secret"), SEQ)
                       + sgip.encode(sgip.Report(SEQ, "8613000000000", 0), seq2)
                       + sgip.encode(sgip.Deliver("8613000000000", "1069012329", b"YE"), seq3))
    clock.advance(0)
    answers = frames(transport, sgip.decode)
    assert [(a.command_id, a.pdu.result) for a in answers] == [
        (sgip.BIND_RESP, 0), (sgip.REPORT_RESP, 0), (sgip.DELIVER_RESP, 0)]
    receipt = SgipLink.incoming(seen[0], "smg", lambda: None)
    mo = SgipLink.incoming(seen[1], "smg", lambda: None)
    assert receipt.message_id == str(SEQ) and receipt.state == "DELIVRD"
    assert (mo.source, mo.text) == ("13000000000", "YE")


class _Never:
    """An endpoint that never connects: links stay down, the routing table is what is tested."""

    def connect(self, factory):
        return Deferred()


def test_router_routes_by_carrier_segment_then_the_aggregator():
    """A mobile-segment number goes to the CMPP route first and fails over to the SMPP
    aggregator; a telecom number to SMGP then the aggregator; the CMPP route never takes
    another carrier's numbers."""
    aggregator = replace(carrier_config("smpp"), name="agg", carriers=(), system_id="x")
    configs = [carrier_config("cmpp3", name="cmcc"),
               carrier_config("smgp", name="ctcc", carriers=("telecom",), system_id="90123456"),
               aggregator]
    router = SmppRouter(configs, Clock(), on_receipt=fail, on_mo=fail,
                        endpoint_for=lambda c: _Never())
    assert [s.name for s in router.route("13800000000")] == ["cmcc", "agg"]
    assert [s.name for s in router.route("18900000000")] == ["ctcc", "agg"]
    assert [s.name for s in router.route("13000000000")] == ["agg"]


def test_for_carrier_turns_gsm_parts_into_ascii():
    """Carriers' Msg_Fmt 0 is ASCII: an SMPP GSM part is re-encoded, '@' included."""
    enc = text.encode("YE balance @ 12:00")
    body, fmt = text.for_carrier(enc.parts[0], enc.data_coding, enc.esm_class)
    assert (body, fmt) == (b"YE balance @ 12:00", 0)


@pytest.mark.parametrize("udh,expected", [
    (bytes([5, 0, 3, 9, 3, 2]), (3, 2)), (bytes([6, 8, 4, 1, 2, 4, 4]), (4, 4))])
def test_concatenation_read_from_8_and_16_bit_udh(udh, expected):
    """Pk_total/Pk_number come from either concatenation UDH."""
    assert text.concatenation(udh + b"xx", text.ESM_UDHI) == expected


CARRIER_INI = """
[center:ly]
name = 洛阳市住房公积金管理中心
signature = 洛阳公积金
[ami]
secret = x
[smsc:cmcc]
protocol = cmpp3
endpoint = tcp:host=h:port=1
system_id = 901234
password = s
carriers = mobile, virtual
text_format = gbk
[smsc:cucc]
protocol = sgip
endpoint = tcp:host=h:port=2
system_id = hotline
password = s
carriers = unicom
listen = tcp:8802
smg_login = smg
smg_password = s
"""


def test_config_reads_the_carrier_protocols(tmp_path):
    """[smsc:NAME] protocol = cmpp3 takes the window of 16 the specification advises, its
    carriers and GBK; an SGIP section names the listener and the SMG's login."""
    from common.config import load
    from daemon import ROOMS

    path = tmp_path / "hotline.ini"
    path.write_text(CARRIER_INI, encoding="utf-8")
    cmcc, cucc = load(path, ROOMS).sms.smscs
    assert (cmcc.protocol, cmcc.window, cmcc.carriers, cmcc.gbk) == (
        "cmpp3", 16, ("mobile", "virtual"), True)
    assert (cucc.protocol, cucc.listen, cucc.smg_login) == ("sgip", "tcp:8802", "smg")


def test_config_reads_sgip_idle_with_a_30_second_default(tmp_path):
    """[smsc:NAME] idle (SGIP's unbind after idle): 30 s when absent, the section's value
    when given, never negative."""
    from common.config import ConfigError, load
    from daemon import ROOMS

    path = tmp_path / "hotline.ini"
    path.write_text(CARRIER_INI, encoding="utf-8")
    assert load(path, ROOMS).sms.smscs[1].idle == 30.0
    path.write_text(CARRIER_INI + "idle = 120\n", encoding="utf-8")
    assert load(path, ROOMS).sms.smscs[1].idle == 120.0
    path.write_text(CARRIER_INI + "idle = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="idle"):
        load(path, ROOMS)


def test_config_refuses_an_sgip_link_without_its_listener(tmp_path):
    """SGIP cannot receive reports without the listener: a missing ``listen`` stops the
    daemon with the one-line error naming the key."""
    from common.config import ConfigError, load
    from daemon import ROOMS

    path = tmp_path / "hotline.ini"
    path.write_text(CARRIER_INI.replace("listen = tcp:8802\n", ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[smsc:cucc\] listen"):
        load(path, ROOMS)


def test_each_center_sends_from_its_extension():
    """Src_Id is the SP's service number plus the sending center's extension, so the MO
    answering it comes back to that center; a center without one uses the bare number."""
    enc = text.encode("【示例公积金】您好")
    config = carrier_config(extensions=(("ly", "02"),))
    part = SubmitPart("13800000000", "12329", enc.parts[0], enc.data_coding, enc.esm_class,
                      center="ly")
    assert CmppLink.submit_pdu(part, config).src_id == "106901232902"
    assert CmppLink.submit_pdu(replace(part, center="demo"), config).src_id == "1069012329"


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=150), st.sampled_from(["cmpp2", "cmpp3"]), st.booleans(),
       st.sampled_from(["ly", "demo"]), st.booleans(), st.integers(0, 3),
       st.text(alphabet="0123456789", min_size=1, max_size=21))
def test_a_cmpp_part_is_prepared_as_its_submit_encodes(body, protocol, gbk, center, receipt,
                                                        priority, destination):
    """``CmppLink.prepare`` writes a part's SUBMIT without building it: octet for octet what
    encoding ``submit_pdu`` writes, for any text (one part or several, GSM, UCS2 or GBK), either
    version, a center with or without its extension, with or without a receipt asked."""
    config = carrier_config(protocol, gbk=gbk, extensions=(("ly", "02"),))
    enc = text.encode(body, max_parts=3)
    for payload in enc.parts:
        part = SubmitPart(destination, "12329", payload, enc.data_coding, enc.esm_class,
                          registered_delivery=receipt, priority_flag=priority, center=center)
        assert CmppLink.prepare(part, config) == CmppLink.encode_ahead(
            CmppLink.submit_pdu(part, config), config)


def test_sgip_listener_stop_closes_the_smg_connections():
    """Stopping the listener closes the SMG's open connections (what was not answered is
    sent again by the SMG); a closed one is forgotten."""
    proto, transport = sgip_listener_proto()
    listener = proto.listener
    assert listener.open == {proto}
    listener.running = True
    listener.stopService()
    assert transport.disconnecting
    proto.connectionLost(None)
    assert listener.open == set()


@pytest.mark.parametrize("protocol, link_class, decode, encode", [
    ("cmpp3", CmppLink, decode30, lambda pdu, seq: cmpp.encode(pdu, seq, cmpp.V30)),
    ("cmpp2", CmppLink, lambda raw: cmpp.decode(raw, cmpp.V20),
     lambda pdu, seq: cmpp.encode(pdu, seq, cmpp.V20)),
    ("smgp", SmgpLink, smgp.decode, smgp.encode),
    ("sgip", SgipLink, sgip.decode, sgip.encode),
])
def test_a_prepared_submit_goes_out_as_the_codec_writes_it(protocol, link_class, decode, encode):
    """A Submit encoded before its turn (``CarrierLink.prepare``, while its part waits for a
    window slot) goes out with the connection's next sequence numbers, octet for octet
    what encoding it at the moment of sending writes."""
    clock = Clock()
    clock.advance(1_790_000_000)
    config = carrier_config(protocol, system_id="90123456" if protocol == "smgp" else "901234",
                            node_id=3020099999, corp_id="12345")
    enc = text.encode("【示例公积金】您好")
    part = SubmitPart("13800000000", "12329", enc.parts[0], enc.data_coding, enc.esm_class)
    prepared = link_class.prepare(part, config)
    proto, transport = connected(link_class("x-0", None, config, clock).build_protocol())
    proto.request(prepared, "submit")
    proto.request(prepared, "submit")
    raw = transport.value()
    sent = frames(transport, decode)
    assert len({str(f.sequence) for f in sent}) == 2
    pdu = link_class.submit_pdu(part, config)
    assert raw == b"".join(encode(pdu, f.sequence) for f in sent)


def _toy_encode(body: bytes, sequence: int) -> bytes:
    """A made-up carrier's frame: length, command id, a 6-octet sequence, the body."""
    return (14 + len(body)).to_bytes(4, "big") + (4).to_bytes(4, "big") \
        + sequence.to_bytes(6, "big") + body


class _SixOctetSequence(CarrierProtocol):
    """A made-up carrier protocol: it states its placeholder sequence and how its header
    writes a sequence (6 octets), and nothing about where a request's body starts."""

    protocol_name = "TOY"
    PLACEHOLDER_SEQUENCE = 0

    def __init__(self, clock):
        self.sequence = 0x0102030405
        super().__init__(clock)

    def frame_splitter(self):
        return FrameSplitter(14, 4096)

    def encode(self, pdu, sequence) -> bytes:
        return _toy_encode(pdu, sequence)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    @staticmethod
    def sequence_octets(sequence) -> bytes:
        return sequence.to_bytes(6, "big")


def test_a_new_protocol_gets_its_prepared_requests_right_from_its_sequence_alone():
    """A request encoded ahead with the protocol's placeholder sequence (``prepared``)
    goes out octet for octet as encoding it at sending writes, for a sequence of any
    length: where the body starts comes from the protocol, not from its caller."""
    body = b"hello, carrier"
    prepared = _SixOctetSequence.prepared(
        _toy_encode(body, _SixOctetSequence.PLACEHOLDER_SEQUENCE))
    proto, transport = connected(_SixOctetSequence(Clock()))
    proto.request(prepared, "submit")
    proto.request(prepared, "submit")
    assert transport.value() == _toy_encode(body, 0x0102030406) + \
        _toy_encode(body, 0x0102030407)


class _MemoryEndpoint:
    """Connects a link's protocol to a StringTransport at once."""

    def __init__(self):
        self.transport = StringTransport()

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        self.transport.protocol = protocol
        protocol.makeConnection(self.transport)
        return succeed(protocol)


PART_CMPP = SubmitPart("13800000000", "12329", "您好".encode("utf-16-be"), 8, 0)


def _router_logged_in(journal=None, **config):
    """A router with one CMPP 3.0 connection, logged in over a memory transport."""
    clock = Clock()
    clock.advance(1_790_000_000)
    endpoint = _MemoryEndpoint()
    router = SmppRouter([carrier_config(**config)], clock, on_receipt=fail, on_mo=fail,
                        endpoint_for=lambda c: endpoint, journal=journal)
    router.startService()
    transport = endpoint.transport
    [connect] = frames(transport, decode30)
    assert router.connections() == {"ismg": 0}
    auth = cmpp.authenticator_ismg(0, connect.pdu.authenticator, "secret")
    transport.protocol.dataReceived(cmpp.encode(cmpp.ConnectResp(0, auth, cmpp.V30),
                                                connect.sequence))
    return router, transport


def test_the_cluster_is_told_of_a_carrier_connection_once_it_is_logged_in():
    """The cluster report counts a CMPP connection that is up (carrier links say "up",
    SMPP binds "bound"): 0 while the CONNECT waits, 1 once it is answered."""
    router, _transport = _router_logged_in()
    assert router.connections() == {"ismg": 1}


def test_router_fails_a_part_cmpp_cannot_carry_before_it_takes_a_window_slot():
    """A part whose Submit does not encode (content beyond Msg_Length's 255 octets) fails
    at the router for good, naming its SMSC: never counted as submitted (nor journalled as
    sent), nothing written, the link up; the next part goes out."""
    router, transport = _router_logged_in()
    assert router.bound_count() == 1
    errors = []
    too_long = SubmitPart("13800000000", "12329", b"x" * 300, 8, 0)
    router.submit(too_long, 1).addErrback(errors.append)
    [bind] = router.states()["ismg"].values()
    assert errors[0].check(Unencodable) and errors[0].value.smsc == "ismg"
    assert (bind["submitted"], bind["inflight"], transport.value()) == (0, 0, b"")
    router.submit(SubmitPart("13800000000", "12329", "您好".encode("utf-16-be"), 8, 0), 2)
    [submit] = frames(transport, decode30)
    assert submit.pdu.dest_terminal_ids == ("13800000000",)


def _journal_lines(journal: SendJournal) -> list[str]:
    """The journal's lines on disk after its header, as ``kind part`` (R lines with outcome)."""
    lines = []
    for path in journal.segments():
        for line in path.read_text().splitlines()[1:]:
            kind, part, *rest = line.split("\t")
            lines.append(f"{kind} {part}" + (f" {rest[1]}" if kind == "R" else ""))
    return lines


def _answer(transport, submits, result=0):
    """One read carrying a SUBMIT_RESP for each of ``submits`` (Msg_Id from its sequence)."""
    transport.protocol.dataReceived(b"".join(
        cmpp.encode(cmpp.SubmitResp(cmpp.MsgId(11, 30, 14, 5, 9, 1, s.sequence), result),
                    s.sequence) for s in submits))


def test_answers_read_together_refill_the_window_before_the_outbox_hears_of_them(tmp_path):
    """A read that answers the window frees its slots, journals the answers and writes the
    parts waiting for those slots, all before any answer's Deferred fires: the next burst
    is on its way while the outbox records the last one. The journal has each answer's R
    line before the refill's S lines, so a kill -9 still leaves at most a window in doubt."""
    journal = SendJournal(tmp_path / "j", "t", boot_id="b")
    journal.open()
    router, transport = _router_logged_in(journal=journal, window=2)
    seen = []  # at each answer's callback: (its result, the SUBMITs written by then)

    def heard(submitted):
        seen.append((submitted, [f.pdu for f in frames(transport, decode30)]))

    for part_id in range(1, 5):
        router.submit(PART_CMPP, (part_id, 100 + part_id)).addCallback(heard)
    first = frames(transport, decode30)
    assert len(first) == 2 and _journal_lines(journal) == ["S 1", "S 2"]
    _answer(transport, first)
    [(one, refill), (two, nothing)] = seen
    assert len(refill) == 2 and nothing == []  # written before the first answer was heard
    assert one == Submitted(str(cmpp.MsgId(11, 30, 14, 5, 9, 1, first[0].sequence)), "ismg",
                            "ismg-0")
    assert two.message_id == str(cmpp.MsgId(11, 30, 14, 5, 9, 1, first[1].sequence))
    assert _journal_lines(journal) == ["S 1", "S 2", "R 1 ok", "R 2 ok", "S 3", "S 4"]
    assert journal.read().last[1].smpp_id == one.message_id
    assert journal.read().last[1].message_id == 101
    [bind] = router.states()["ismg"].values()
    assert (bind["inflight"], bind["queued"], bind["ok"]) == (2, 0, 2)


def test_a_refused_answer_in_the_read_fails_alone_and_is_not_journalled_as_sent_ok(tmp_path):
    """Flow control for one part and success for the other in one read: the refused part
    fails Throttled (the dispatcher retries it and journals what it decides), the accepted
    one is journalled ok and fires with its id; both slots are free for the refill."""
    journal = SendJournal(tmp_path / "j", "t", boot_id="b")
    journal.open()
    router, transport = _router_logged_in(journal=journal, window=2)
    outcomes = []
    for part_id in (1, 2, 3):
        router.submit(PART_CMPP, (part_id, 100 + part_id)).addBoth(outcomes.append)
    ok, refused = frames(transport, decode30)
    transport.protocol.dataReceived(
        cmpp.encode(cmpp.SubmitResp(cmpp.MsgId(11, 30, 14, 5, 9, 1, 7), 0), ok.sequence)
        + cmpp.encode(cmpp.SubmitResp(cmpp.ZERO_MSG_ID, cmpp.RESULT_FLOW_CONTROL),
                      refused.sequence))
    [accepted] = [o for o in outcomes if isinstance(o, Submitted)]
    [throttled] = [o for o in outcomes if not isinstance(o, Submitted)]
    assert accepted.message_id == str(cmpp.MsgId(11, 30, 14, 5, 9, 1, 7))
    assert throttled.check(Throttled)
    assert len(frames(transport, decode30)) == 1  # the third part took a freed slot
    assert _journal_lines(journal) == ["S 1", "S 2", "R 1 ok", "S 3"]
    [bind] = router.states()["ismg"].values()
    assert (bind["inflight"], bind["ok"], bind["throttled"]) == (1, 1, 1)


def test_a_refill_the_journal_cannot_record_fails_unsent_and_the_answers_still_arrive(tmp_path):
    """The journal's disk fails as the bind refills its window: the read's answers still
    reach the outbox, the refill's parts fail NeverSent (not written, so the outbox retries
    them with no duplicate counted) instead of vanishing, and the link stays up."""
    journal = SendJournal(tmp_path / "j", "t", boot_id="b")
    journal.open()
    router, transport = _router_logged_in(journal=journal, window=2)
    outcomes = []
    for part_id in range(1, 5):
        router.submit(PART_CMPP, (part_id, 100 + part_id)).addBoth(outcomes.append)
    first = frames(transport, decode30)

    def disk_full(parts):
        raise OSError(28, "No space left on device")

    bind = router._smscs[0].binds[0]
    bind.on_send = disk_full
    _answer(transport, first)
    assert [type(o) for o in outcomes[:2]] == [Failure, Failure]  # the refill, first
    assert all(o.check(NeverSent) for o in outcomes[:2])
    assert [type(o) for o in outcomes[2:]] == [Submitted, Submitted]
    assert frames(transport, decode30) == [] and router.bound_count() == 1
    assert (bind.inflight, len(bind._queue)) == (0, 0)
