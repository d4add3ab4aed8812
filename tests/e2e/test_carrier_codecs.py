"""The Python carrier codecs against the independent Node simulators, over real sockets.

Plain blocking sockets on 127.0.0.1 (no Twisted, no reactor): each test logs in, is
refused with a wrong secret, submits a single and a 2-part UCS2 message (with a UDH),
receives the status reports and an MO, runs an active test and closes the session.
The simulators were written from the specifications without the Python code, so a
passing test means both readings of the specification agree byte for byte.

Mobile numbers here are test data; comparisons go through ``same`` so a failure
shows them masked, never whole.
"""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from common.masking import mask_text
from sandbox.pytest_carriers import start_carrier_sim
from sms.carrier import text as smstext
from sms.cmpp import codec as cmpp
from sms.sgip import codec as sgip
from sms.smgp import codec as smgp
from tests.support.carrier_links import (
    Link,
    SgipListener,
    cmpp_login,
    sgip_bind,
    smgp_login,
)

pytestmark = pytest.mark.e2e

MOBILE = "13800138000"
MOBILE2 = "13900139000"
SERVICE = "1069001232901"  # the 106 number plus the center's extension
LONG_TEXT = "【示例公积金】您尾号0002的公积金账户于2026-11-26汇缴入账1,608.00元，当前余额54,513.36元。" \
            "如有疑问请拨打12329。"


def same(actual, expected, what: str) -> None:
    """Fail with both values masked when they differ (they may be mobile numbers)."""
    if actual != expected:
        pytest.fail(f"{what}: {mask_text(repr(actual))} != {mask_text(repr(expected))}",
                    pytrace=False)


def wait_for_stats(sim, timeout: float = 5.0, **expected) -> dict:
    """Poll the simulator's stats until the ``expected`` counters are reached; return them."""
    deadline = time.monotonic() + timeout
    while True:
        stats = sim.stats()
        if all(stats.get(key) == value for key, value in expected.items()):
            return stats
        if time.monotonic() > deadline:
            got = {key: stats.get(key) for key in expected}
            pytest.fail(f"simulator counters {got} never reached {expected}", pytrace=False)
        time.sleep(0.05)


def ucs2_parts(text: str, reference: int) -> list[bytes]:
    """The project's own splitter: UCS2 parts with an 8-bit concatenation UDH."""
    encoded = smstext.encode(text, reference=reference)
    assert encoded.data_coding == smstext.DC_UCS2 and encoded.part_count == 2
    return encoded.parts


# ---- CMPP --------------------------------------------------------------------

@pytest.mark.parametrize("version", [cmpp.V20, cmpp.V30], ids=["2.0", "3.0"])
def test_cmpp_session_against_the_ismg(log_dir, version):
    """CMPP 2.0/3.0: login (ISMG authenticator checks out), a refused wrong secret,
    a single and a 2-part UCS2 submit whose fields the ISMG read as meant, reports
    matched by Msg_Id, an MO, ACTIVE_TEST and TERMINATE."""
    sim = start_carrier_sim("cmpp", log_dir)
    try:
        bad, (_c, refused) = cmpp_login(sim.port, version, secret="wrong")
        assert refused.status == cmpp.CONNECT_BAD_AUTH
        assert bad.closed_by_peer()
        bad.close()

        link, (connect, resp) = cmpp_login(sim.port, version)
        assert resp.status == cmpp.CONNECT_OK
        assert cmpp.verify_connect_resp(resp, connect.authenticator, "secret", version)
        assert not cmpp.verify_connect_resp(resp, connect.authenticator, "wrong", version)
        wide = version == cmpp.V30

        single = cmpp.Submit((MOBILE,), b"YE 12329", src_id=SERVICE, msg_src="901234",
                             service_id="HPF12329", registered_delivery=1, msg_level=1,
                             fee_user_type=2, fee_type="01", fee_code="000000",
                             link_id="LINK-0001" if wide else "",
                             fee_terminal_type=0, dest_terminal_type=0)
        link.send(single, 2)
        frames = link.read_n(2)
        resp = next(f for f in frames if f.command_id == cmpp.SUBMIT_RESP)
        report = next(f for f in frames if f.command_id == cmpp.DELIVER)
        assert resp.sequence == 2 and resp.pdu.result == cmpp.RESULT_OK
        assert str(report.pdu.report.msg_id) == str(resp.pdu.msg_id)
        assert report.pdu.report.stat == "DELIVRD"
        same(report.pdu.report.dest_terminal_id, MOBILE, "report Dest_terminal_Id")
        same(report.pdu.src_terminal_id, MOBILE, "report Src_terminal_Id")
        same(report.pdu.dest_id, SERVICE, "report Dest_Id")
        link.send(cmpp.DeliverResp(report.pdu.msg_id), report.sequence)

        seen = sim.stats()["last_submits"][-1]
        assert (seen["pk_total"], seen["pk_number"], seen["registered_delivery"],
                seen["msg_level"], seen["service_id"], seen["fee_user_type"], seen["msg_src"],
                seen["src_id"], seen["content_hex"]) == \
            (1, 1, 1, 1, "HPF12329", 2, "901234", SERVICE, b"YE 12329".hex())
        assert seen["dest_terminal_ids"] == ["138****8000"]
        if wide:
            assert seen["link_id"] == "LINK-0001"

        parts = ucs2_parts(LONG_TEXT, reference=0x2A)
        for i, part in enumerate(parts, 1):
            link.send(cmpp.Submit((MOBILE2,), part, src_id=SERVICE, msg_src="901234",
                                  msg_fmt=cmpp.MSG_FMT_UCS2, tp_udhi=1, pk_total=2,
                                  pk_number=i, registered_delivery=1), 10 + i)
        frames = link.read_n(4)
        resps = {f.sequence: f.pdu for f in frames if f.command_id == cmpp.SUBMIT_RESP}
        reports = [f for f in frames if f.command_id == cmpp.DELIVER]
        assert sorted(resps) == [11, 12] and all(r.result == 0 for r in resps.values())
        assert sorted(str(f.pdu.report.msg_id) for f in reports) == \
            sorted(str(r.msg_id) for r in resps.values())
        for f in reports:
            link.send(cmpp.DeliverResp(f.pdu.msg_id), f.sequence)
        seen = sim.stats()["last_submits"][-2:]
        assert [(s["pk_total"], s["pk_number"], s["tp_udhi"], s["msg_fmt"]) for s in seen] == \
            [(2, 1, 1, 8), (2, 2, 1, 8)]
        assert [bytes.fromhex(s["content_hex"]) for s in seen] == parts
        assert parts[0][:6] == bytes([5, 0, 3, 0x2A, 2, 1])

        assert sim.mo(MOBILE, SERVICE, "YE")["ok"]
        mo = link.read()
        assert mo.command_id == cmpp.DELIVER and mo.pdu.report is None
        assert mo.pdu.content == b"YE" and mo.pdu.msg_fmt == cmpp.MSG_FMT_ASCII
        same(mo.pdu.src_terminal_id, MOBILE, "MO Src_terminal_Id")
        same(mo.pdu.dest_id, SERVICE, "MO Dest_Id")
        link.send(cmpp.DeliverResp(mo.pdu.msg_id), mo.sequence)

        link.send(cmpp.ActiveTest(), 20)
        frame = link.read()
        assert frame.command_id == cmpp.ACTIVE_TEST_RESP and frame.sequence == 20

        link.send(cmpp.Terminate(), 21)
        frame = link.read()
        assert frame.command_id == cmpp.TERMINATE_RESP and frame.sequence == 21
        assert link.closed_by_peer()
        link.close()

        stats = wait_for_stats(sim, reports_acked=3, mo_acked=1)
        assert (stats["logins"], stats["logins_refused"], stats["accepted"],
                stats["duplicates"], stats["malformed"], stats["active_tests"],
                stats["terminates"]) == (1, 1, 3, 0, 0, 1, 1)
    finally:
        sim.stop()


def test_cmpp_report_before_response_and_flow_control(log_dir):
    """The faults a link must survive read correctly: a report that beats its
    SUBMIT_RESP carries the same Msg_Id, and result 8 is recognised as flow control."""
    sim = start_carrier_sim("cmpp", log_dir, report_before_resp=True, report_delay_ms=50)
    try:
        link, (_c, resp) = cmpp_login(sim.port, cmpp.V30)
        assert resp.status == 0
        link.send(cmpp.Submit((MOBILE,), b"x", src_id=SERVICE, registered_delivery=1), 2)
        first, second = link.read_n(2)
        assert first.command_id == cmpp.DELIVER and second.command_id == cmpp.SUBMIT_RESP
        assert first.pdu.report.msg_id == second.pdu.msg_id
        link.send(cmpp.DeliverResp(first.pdu.msg_id), first.sequence)

        sim.configure(flow_control_fraction=1)
        link.send(cmpp.Submit((MOBILE,), b"y", src_id=SERVICE), 3)
        frame = link.read()
        assert frame.sequence == 3 and cmpp.is_flow_control(frame.pdu.result)
        link.close()
        assert sim.stats()["flow_controlled"] == 1
    finally:
        sim.stop()


def test_cmpp_refusals_by_status_and_ismg_keepalive(log_dir):
    """An unknown SP id is refused with status 2 and a version above 3.0 with status 4
    (each a distinct, clear error for the link to report); an ISMG that probes an idle
    link with ACTIVE_TEST gets our ACTIVE_TEST_RESP, decoded and counted on its side."""
    sim = start_carrier_sim("cmpp", log_dir)
    try:
        for connect, status in (
                (cmpp.make_connect("999999", "secret", datetime.now()), cmpp.CONNECT_BAD_SOURCE),
                (cmpp.Connect("901234", bytes(16), 0x40, 1130132535),
                 cmpp.CONNECT_VERSION_TOO_HIGH)):
            link = Link.connect(sim.port, cmpp, cmpp.V30)
            link.send(connect, 1)
            assert link.read().pdu.status == status
            assert link.closed_by_peer()
            link.close()

        link, (_c, resp) = cmpp_login(sim.port, cmpp.V30)
        assert resp.status == cmpp.CONNECT_OK
        sim.configure(active_test_every_s=0.2)
        probe = link.read()
        assert probe.command_id == cmpp.ACTIVE_TEST and probe.pdu == cmpp.ActiveTest()
        link.send(cmpp.ActiveTestResp(), probe.sequence)
        sim.configure(active_test_every_s=0)
        wait_for_stats(sim, active_test_resps=1)
        link.close()
        assert sim.stats()["logins_refused"] == 2
    finally:
        sim.stop()


# ---- SMGP --------------------------------------------------------------------

def test_smgp_session_against_the_smgw(log_dir):
    """SMGP 3.0: Login (server authenticator checks out), a refused wrong secret,
    single and 2-part UCS2 Submits with TLVs the SMGW read as meant, reports matched
    by MsgID, an MO, Active_Test and Exit."""
    sim = start_carrier_sim("smgp", log_dir)
    try:
        bad, _login, refused = smgp_login(sim.port, secret="wrong")
        assert refused.status == smgp.STATUS_BAD_AUTH
        assert bad.closed_by_peer()
        bad.close()

        link, login, resp = smgp_login(sim.port)
        assert resp.status == smgp.STATUS_OK
        assert smgp.verify_login_resp(resp, login.authenticator, "secret")

        link.send(smgp.Submit((MOBILE,), b"YE 12329", src_term_id=SERVICE, need_report=1,
                              service_id="HPF12329",
                              options=smgp.Options(link_id="LINK-0001", src_term_type=0)), 2)
        frames = link.read_n(2)
        resp = next(f for f in frames if f.command_id == smgp.SUBMIT_RESP)
        report = next(f for f in frames if f.command_id == smgp.DELIVER)
        assert resp.sequence == 2 and resp.pdu.status == smgp.STATUS_OK
        assert resp.pdu.msg_id.parts[0] == 123456
        assert str(report.pdu.report.msg_id) == str(resp.pdu.msg_id)
        assert report.pdu.report.stat == "DELIVRD" and report.pdu.report.text == b"YE 12329"
        same(report.pdu.src_term_id, MOBILE, "report SrcTermID")
        link.send(smgp.DeliverResp(report.pdu.msg_id), report.sequence)
        seen = sim.stats()["last_submits"][-1]
        assert (seen["need_report"], seen["service_id"], seen["src_term_id"],
                seen["msg_type"], seen["content_hex"], seen["tlvs"]) == \
            (1, "HPF12329", SERVICE, smgp.MSG_TYPE_MT, b"YE 12329".hex(),
             {"link_id": "LINK-0001", "src_term_type": 0})

        parts = ucs2_parts(LONG_TEXT, reference=0x2B)
        for i, part in enumerate(parts, 1):
            link.send(smgp.Submit((MOBILE2,), part, src_term_id=SERVICE, need_report=1,
                                  msg_format=smgp.MSG_FORMAT_UCS2,
                                  options=smgp.Options(tp_udhi=1, pk_total=2, pk_number=i)),
                      10 + i)
        frames = link.read_n(4)
        resps = {f.sequence: f.pdu for f in frames if f.command_id == smgp.SUBMIT_RESP}
        reports = [f for f in frames if f.command_id == smgp.DELIVER]
        assert sorted(resps) == [11, 12]
        assert sorted(str(f.pdu.report.msg_id) for f in reports) == \
            sorted(str(r.msg_id) for r in resps.values())
        for f in reports:
            link.send(smgp.DeliverResp(f.pdu.msg_id), f.sequence)
        seen = sim.stats()["last_submits"][-2:]
        assert [s["tlvs"] for s in seen] == [{"tp_udhi": 1, "pk_total": 2, "pk_number": 1},
                                             {"tp_udhi": 1, "pk_total": 2, "pk_number": 2}]
        assert [bytes.fromhex(s["content_hex"]) for s in seen] == parts

        assert sim.mo(MOBILE, SERVICE, "公积金余额")["ok"]
        mo = link.read()
        assert mo.command_id == smgp.DELIVER and mo.pdu.report is None
        assert mo.pdu.msg_format == smgp.MSG_FORMAT_UCS2
        assert mo.pdu.content.decode("utf-16-be") == "公积金余额"
        same(mo.pdu.src_term_id, MOBILE, "MO SrcTermID")
        same(mo.pdu.dest_term_id, SERVICE, "MO DestTermID")
        link.send(smgp.DeliverResp(mo.pdu.msg_id), mo.sequence)

        link.send(smgp.ActiveTest(), 20)
        frame = link.read()
        assert frame.command_id == smgp.ACTIVE_TEST_RESP and frame.sequence == 20
        link.send(smgp.Exit(), 21)
        frame = link.read()
        assert frame.command_id == smgp.EXIT_RESP and frame.sequence == 21
        assert link.closed_by_peer()
        link.close()
        stats = wait_for_stats(sim, reports_acked=3, mo_acked=1)
        assert (stats["logins"], stats["logins_refused"], stats["accepted"],
                stats["duplicates"], stats["malformed"], stats["exits"]) == (1, 1, 3, 0, 0, 1)
    finally:
        sim.stop()


# ---- SGIP --------------------------------------------------------------------

def test_sgip_session_against_the_smg(log_dir):
    """SGIP 1.2: Bind and a refused wrong password; Submits (single, 2-part UCS2);
    the SMG binds BACK to our listener (login type 2) and sends the Reports, which
    name our Submits' 12-octet sequence numbers, and the MO; Unbind both ways."""
    listener = SgipListener()
    sim = start_carrier_sim("sgip", log_dir, sp_port=listener.port, callback_idle_ms=300)
    try:
        bad, refused = sgip_bind(sim.port, password="wrong")
        assert refused.result == sgip.RESULT_BAD_LOGIN
        assert bad.closed_by_peer()
        bad.close()

        link, resp = sgip_bind(sim.port)
        assert resp.result == sgip.RESULT_OK
        node, user, user2 = 3020099999, "86" + MOBILE, "86" + MOBILE2
        seq1 = sgip.SgipSequence.at(node, datetime.now(), 2)
        link.send(sgip.Submit((user,), b"YE 12329", sp_number=SERVICE, corp_id="12329",
                              service_type="HPF", report_flag=1), seq1)
        frame = link.read()
        assert frame.pdu == sgip.submit_resp(sgip.RESULT_OK) and frame.sequence == seq1

        parts = ucs2_parts(LONG_TEXT, reference=0x2C)
        seqs = [sgip.SgipSequence.at(node, datetime.now(), 10 + i) for i in (1, 2)]
        for seq, part in zip(seqs, parts):
            link.send(sgip.Submit((user2,), part, sp_number=SERVICE, report_flag=1,
                                  tp_udhi=1, message_coding=sgip.CODING_UCS2), seq)
        frames = link.read_n(2)
        assert sorted(str(f.sequence) for f in frames) == sorted(str(s) for s in seqs)
        seen = sim.stats()["last_submits"]
        assert seen[0]["corp_id"] == "12329" and seen[0]["user_numbers"] == ["861******8000"]
        assert [bytes.fromhex(s["content_hex"]) for s in seen[-2:]] == parts
        assert [(s["tp_udhi"], s["message_coding"]) for s in seen[-2:]] == [(1, 8), (1, 8)]
        assert sim.mo(user, SERVICE, "YE")["ok"]

        back = listener.accept()
        bind = back.read()
        assert bind.command_id == sgip.BIND
        assert (bind.pdu.login_type, bind.pdu.login_name, bind.pdu.login_password) == \
            (sgip.LOGIN_SMG_TO_SP, "smg", "secret")
        back.send(sgip.bind_resp(), bind.sequence)
        reports, mos = {}, []
        while len(reports) < 3 or not mos:
            frame = back.read()
            if frame.command_id == sgip.REPORT:
                reports[str(frame.pdu.submit_sequence)] = frame.pdu
                back.send(sgip.report_resp(), frame.sequence)
            elif frame.command_id == sgip.DELIVER:
                mos.append(frame.pdu)
                back.send(sgip.deliver_resp(), frame.sequence)
        assert sorted(reports) == sorted(str(s) for s in [seq1, *seqs])
        assert all(r.state == sgip.STATE_DELIVERED and r.report_type == 0
                   for r in reports.values())
        same(reports[str(seq1)].user_number, user, "Report UserNumber")
        assert mos[0].content == b"YE" and mos[0].message_coding == sgip.CODING_ASCII
        same(mos[0].user_number, user, "MO UserNumber")
        same(mos[0].sp_number, SERVICE, "MO SPNumber")
        unbind = back.read()  # the SMG unbinds after callback_idle_ms of quiet
        assert unbind.command_id == sgip.UNBIND
        back.send(sgip.UnbindResp(), unbind.sequence)
        back.close()

        link.send(sgip.Unbind(), sgip.SgipSequence.at(node, datetime.now(), 30))
        frame = link.read()
        assert frame.command_id == sgip.UNBIND_RESP
        assert link.closed_by_peer()
        link.close()
        stats = wait_for_stats(sim, reports_acked=3, mo_acked=1)
        assert (stats["logins"], stats["logins_refused"], stats["accepted"], stats["duplicates"],
                stats["malformed"], stats["callback_binds"]) == (1, 1, 3, 0, 0, 1)
    finally:
        sim.stop()
        listener.close()


# ---- the simulators' fault knobs ------------------------------------------------------

def test_simulator_faults_latency_silence_duplicates_and_cuts(log_dir):
    """The fault knobs a link layer will be tested against work as documented: latency
    with jitter delays each response, unanswered_fraction leaves exactly that share of
    submits without a response, a second acceptance of the same content and destination
    counts as a duplicate, and cut_every_s closes the link."""
    sim = start_carrier_sim("smgp", log_dir, latency_ms=150, jitter_ms=50,
                            unanswered_fraction=0.5, reports=False)
    try:
        link, _login, resp = smgp_login(sim.port)
        assert resp.status == smgp.STATUS_OK
        started = time.monotonic()
        for seq in (2, 3, 4, 5):  # the same message four times: 2nd and 4th unanswered
            link.send(smgp.Submit((MOBILE,), b"same", src_term_id=SERVICE), seq)
        answered = [link.read(), link.read()]
        elapsed = time.monotonic() - started
        assert [f.sequence for f in answered] == [2, 4] and 0.15 <= elapsed < 2.0
        stats = sim.stats()
        assert (stats["submits"], stats["unanswered"], stats["accepted"],
                stats["duplicates"]) == (4, 2, 2, 1)

        sim.configure(cut_every_s=0.5)
        assert link.closed_by_peer() or link.closed_by_peer()
        link.close()
        assert wait_for_stats(sim, cuts=1)["cuts"] == 1
    finally:
        sim.stop()


def test_sgip_smg_retries_when_the_sp_refuses_its_bind(log_dir):
    """Our SGIP listener's Bind check matters: when it refuses the SMG (Result 1), the
    SMG counts the refusal, keeps the report queued and binds again; once accepted, the
    report arrives."""
    listener = SgipListener()
    sim = start_carrier_sim("sgip", log_dir, sp_port=listener.port, callback_idle_ms=300)
    try:
        link, resp = sgip_bind(sim.port)
        assert resp.result == sgip.RESULT_OK
        seq = sgip.SgipSequence.at(3020099999, datetime.now(), 5)
        link.send(sgip.Submit(("86" + MOBILE,), b"x", sp_number=SERVICE, report_flag=1), seq)
        assert link.read().pdu == sgip.submit_resp()

        first = listener.accept()
        bind = first.read()
        assert bind.command_id == sgip.BIND
        first.send(sgip.bind_resp(sgip.RESULT_BAD_LOGIN), bind.sequence)
        assert first.closed_by_peer()
        first.close()

        second = listener.accept()
        bind = second.read()
        second.send(sgip.bind_resp(), bind.sequence)
        report = second.read()
        assert report.command_id == sgip.REPORT and report.pdu.submit_sequence == seq
        second.send(sgip.report_resp(), report.sequence)
        stats = wait_for_stats(sim, reports_acked=1)
        assert (stats["callback_binds_refused"], stats["callback_binds"]) == (1, 1)
        second.close()
        link.close()
    finally:
        sim.stop()
        listener.close()


def test_login_faults_refusals_then_success_and_an_impostor_gateway(log_dir):
    """reject_logins refuses that many correct logins (so backoff can be tested) and
    then accepts; wrong_authenticator accepts with an AuthenticatorISMG that does not
    verify, which the client must detect with verify_connect_resp."""
    sim = start_carrier_sim("cmpp", log_dir, reject_logins=2)
    try:
        statuses = []
        for _ in range(3):
            link, (_c, resp) = cmpp_login(sim.port, cmpp.V30)
            statuses.append(resp.status)
            link.close()
        assert statuses == [cmpp.CONNECT_BAD_AUTH, cmpp.CONNECT_BAD_AUTH, cmpp.CONNECT_OK]

        sim.configure(wrong_authenticator=True)
        link, (connect, resp) = cmpp_login(sim.port, cmpp.V30)
        assert resp.status == cmpp.CONNECT_OK
        assert not cmpp.verify_connect_resp(resp, connect.authenticator, "secret", cmpp.V30)
        link.close()
    finally:
        sim.stop()


def test_flow_control_bursts_and_a_cut_with_a_full_window(log_dir):
    """flow_control_every/burst answer runs of submits with flow control (SMGP status 1,
    is_flow_control); cut_after_submits/cut_hold leave submits unanswered until the
    window holds cut_hold of them, then cut the link: the case where every submit in
    flight has no answer and must be resolved by the link layer."""
    sim = start_carrier_sim("smgp", log_dir, reports=False, flow_control_every=3,
                            flow_control_burst=2)
    try:
        link, _login, resp = smgp_login(sim.port)
        assert resp.status == smgp.STATUS_OK
        statuses = []
        for seq in range(2, 8):
            link.send(smgp.Submit((MOBILE,), b"n%d" % seq, src_term_id=SERVICE), seq)
            statuses.append(link.read().pdu.status)
        assert [smgp.is_flow_control(s) for s in statuses] == \
            [False, False, True, True, False, True]

        sim.configure(flow_control_every=0, cut_after_submits=3, cut_hold=3)
        for seq in range(10, 13):
            link.send(smgp.Submit((MOBILE,), b"held %d" % seq, src_term_id=SERVICE), seq)
        assert link.closed_by_peer()
        link.close()
        stats = sim.stats()
        assert (stats["accepted"], stats["flow_controlled"], stats["held"], stats["cuts"]) == \
            (3, 3, 3, 1)
    finally:
        sim.stop()
