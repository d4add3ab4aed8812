"""Property: for any valid Submit, the Python codec and the independent Node simulator
read the same fields from the same bytes.

Hypothesis draws Submits over every field (lengths up to each field's width, any content
octets, 1 to 5 destinations); each goes over a real loopback socket to the simulator, which
parses it with its own code and reports what it read on its control port. Reports are off
so every Submit gets exactly one response. Numbers are "86" + digits, never mobile-shaped
on their own, and the simulator shows them masked; they are compared masked.
"""
from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.masking import mask_mobile
from sandbox.pytest_carriers import start_carrier_sim
from sms.cmpp import codec as cmpp
from sms.sgip import codec as sgip
from sms.smgp import codec as smgp
from tests.support.carrier_links import cmpp_login, sgip_bind, smgp_login

pytestmark = pytest.mark.e2e

EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _text(size: int):
    return st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-",
                   max_size=size)


def _number(size: int, empty: bool = False):
    body = st.text(alphabet="0123456789", max_size=size - 2).map(lambda d: "86" + d)
    return st.one_of(st.just(""), body) if empty else body


_BYTE = st.integers(0, 255)


def _last_submit(sim) -> dict:
    return sim.stats()["last_submits"][-1]


@pytest.mark.parametrize("version", [cmpp.V20, cmpp.V30], ids=["2.0", "3.0"])
def test_ismg_reads_every_cmpp_submit_field_as_the_codec_wrote_it(log_dir, version):
    """Any valid CMPP SUBMIT, on either version, is read field for field alike by the
    Node ISMG and by the Python codec."""
    sim = start_carrier_sim("cmpp", log_dir, reports=False)
    link, (_c, resp) = cmpp_login(sim.port, version)
    assert resp.status == cmpp.CONNECT_OK
    wide = version == cmpp.V30
    width = 32 if wide else 21
    sequence = iter(range(2, 10_000))

    @EXAMPLES
    @given(st.builds(
        cmpp.Submit, dest_terminal_ids=st.lists(_number(width), min_size=1, max_size=5)
        .map(tuple), content=st.binary(max_size=160), src_id=_number(21, empty=True),
        msg_src=_text(6), service_id=_text(10), msg_fmt=_BYTE, tp_udhi=_BYTE, tp_pid=_BYTE,
        pk_total=_BYTE, pk_number=_BYTE, registered_delivery=_BYTE, msg_level=_BYTE,
        fee_user_type=_BYTE, fee_terminal_id=_number(width, empty=True),
        fee_terminal_type=_BYTE if wide else st.just(0), fee_type=_text(2),
        fee_code=_text(6), valid_time=_text(17), at_time=_text(17),
        dest_terminal_type=_BYTE if wide else st.just(0),
        link_id=_text(20) if wide else st.just("")))
    def check(submit):
        seq = next(sequence)
        link.send(submit, seq)
        frame = link.read()
        assert (frame.command_id, frame.sequence, frame.pdu.result) == \
            (cmpp.SUBMIT_RESP, seq, cmpp.RESULT_OK)
        seen = _last_submit(sim)
        expected = {
            "pk_total": submit.pk_total, "pk_number": submit.pk_number,
            "registered_delivery": submit.registered_delivery, "msg_level": submit.msg_level,
            "service_id": submit.service_id, "fee_user_type": submit.fee_user_type,
            "fee_terminal_id": mask_mobile(submit.fee_terminal_id), "tp_pid": submit.tp_pid,
            "tp_udhi": submit.tp_udhi, "msg_fmt": submit.msg_fmt, "msg_src": submit.msg_src,
            "fee_type": submit.fee_type, "fee_code": submit.fee_code,
            "valid_time": submit.valid_time, "at_time": submit.at_time,
            "src_id": submit.src_id, "content_hex": submit.content.hex(),
            "dest_terminal_ids": [mask_mobile(d) for d in submit.dest_terminal_ids],
            "sequence": seq}
        if wide:
            expected.update(fee_terminal_type=submit.fee_terminal_type,
                            dest_terminal_type=submit.dest_terminal_type,
                            link_id=submit.link_id)
        assert seen == expected

    try:
        check()
        assert sim.stats()["malformed"] == 0
    finally:
        link.close()
        sim.stop()


def test_smgw_reads_every_smgp_submit_field_and_tlv_as_the_codec_wrote_it(log_dir):
    """Any valid SMGP Submit, TLVs included, is read alike by the Node SMGW and the codec."""
    sim = start_carrier_sim("smgp", log_dir, reports=False)
    link, _login, resp = smgp_login(sim.port)
    assert resp.status == smgp.STATUS_OK
    sequence = iter(range(2, 10_000))

    def maybe(strategy):
        return st.one_of(st.none(), strategy)

    @EXAMPLES
    @given(st.builds(
        smgp.Submit, dest_term_ids=st.lists(_number(21), min_size=1, max_size=5).map(tuple),
        content=st.binary(max_size=160), src_term_id=_number(21, empty=True),
        charge_term_id=_number(21, empty=True), msg_format=_BYTE, msg_type=_BYTE,
        need_report=_BYTE, priority=_BYTE, service_id=_text(10), fee_type=_text(2),
        fee_code=_text(6), fixed_fee=_text(6), valid_time=_text(17), at_time=_text(17),
        options=st.builds(smgp.Options, tp_pid=maybe(_BYTE), tp_udhi=maybe(_BYTE),
                          link_id=maybe(_text(20)), pk_total=maybe(_BYTE),
                          pk_number=maybe(_BYTE), src_term_type=maybe(_BYTE))))
    def check(submit):
        seq = next(sequence)
        link.send(submit, seq)
        frame = link.read()
        assert (frame.command_id, frame.sequence, frame.pdu.status) == \
            (smgp.SUBMIT_RESP, seq, smgp.STATUS_OK)
        options = {name: getattr(submit.options, name)
                   for name in ("tp_pid", "tp_udhi", "link_id", "pk_total", "pk_number",
                                "src_term_type")}
        assert _last_submit(sim) == {
            "msg_type": submit.msg_type, "need_report": submit.need_report,
            "priority": submit.priority, "service_id": submit.service_id,
            "fee_type": submit.fee_type, "fee_code": submit.fee_code,
            "fixed_fee": submit.fixed_fee, "msg_format": submit.msg_format,
            "valid_time": submit.valid_time, "at_time": submit.at_time,
            "src_term_id": submit.src_term_id,
            "charge_term_id": mask_mobile(submit.charge_term_id),
            "dest_term_ids": [mask_mobile(d) for d in submit.dest_term_ids],
            "content_hex": submit.content.hex(), "sequence": seq,
            "tlvs": {k: v for k, v in options.items() if v is not None}}

    try:
        check()
        assert sim.stats()["malformed"] == 0
    finally:
        link.close()
        sim.stop()


def test_smg_reads_every_sgip_submit_field_as_the_codec_wrote_it(log_dir):
    """Any valid SGIP Submit and 12-octet sequence number is read alike by the Node SMG
    and the codec (the SMG echoes the sequence number in its Submit_Resp)."""
    sim = start_carrier_sim("sgip", log_dir, reports=False)
    link, resp = sgip_bind(sim.port)
    assert resp.result == sgip.RESULT_OK
    counter = iter(range(2, 10_000))

    @EXAMPLES
    @given(st.builds(
        sgip.Submit, user_numbers=st.lists(_number(21), min_size=1, max_size=5).map(tuple),
        content=st.binary(max_size=160), sp_number=_number(21, empty=True),
        charge_number=_number(21, empty=True), corp_id=_text(5), service_type=_text(10),
        fee_type=_BYTE, fee_value=_text(6), given_value=_text(6), agent_flag=_BYTE,
        morelateto_mt_flag=_BYTE, priority=_BYTE, expire_time=_text(16),
        schedule_time=_text(16), report_flag=_BYTE, tp_pid=_BYTE, tp_udhi=_BYTE,
        message_coding=_BYTE, message_type=_BYTE), st.integers(0, 0xFFFFFFFF))
    def check(submit, node):
        seq = sgip.SgipSequence(node, int(datetime.now().strftime("%m%d%H%M%S")), next(counter))
        link.send(submit, seq)
        frame = link.read()
        assert frame.pdu == sgip.submit_resp() and frame.sequence == seq
        assert _last_submit(sim) == {
            "sp_number": submit.sp_number, "charge_number": mask_mobile(submit.charge_number),
            "user_numbers": [mask_mobile(u) for u in submit.user_numbers],
            "corp_id": submit.corp_id, "service_type": submit.service_type,
            "fee_type": submit.fee_type, "fee_value": submit.fee_value,
            "given_value": submit.given_value, "agent_flag": submit.agent_flag,
            "morelateto_mt_flag": submit.morelateto_mt_flag, "priority": submit.priority,
            "expire_time": submit.expire_time, "schedule_time": submit.schedule_time,
            "report_flag": submit.report_flag, "tp_pid": submit.tp_pid,
            "tp_udhi": submit.tp_udhi, "message_coding": submit.message_coding,
            "message_type": submit.message_type, "content_hex": submit.content.hex(),
            "sequence": str(seq)}

    try:
        check()
        assert sim.stats()["malformed"] == 0
    finally:
        link.close()
        sim.stop()
