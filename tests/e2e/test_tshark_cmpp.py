"""Byte-level truth from an independent decoder: Wireshark's dissectors read our bytes.

A real loopback capture (dumpcap on ``lo``, filtered on the simulator's port) of a CMPP
3.0 session against the Node ISMG (CONNECT, a 2-part UCS2 SUBMIT with a UDH, its status
reports, an MO, ACTIVE_TEST, TERMINATE) is decoded with
``tshark -d tcp.port==PORT,cmpp -T json -x``, and every field tshark shows must equal
what the codec meant: the displayed values, and for binary fields (authenticators,
Msg_Content) the raw octets. tshark's known quirk is expected as such: it shows the
Msg_Id's ISMG code shifted right by 8 bits (carriers.md). For CMPP 2.0, tshark knows
only the 3.0 layout, so only the fields it decodes at the 2.0 offsets are compared.
The same check runs for an SMPP submit_sm / deliver_sm exchange through
``sms/smpp/codec.py`` and tshark's smpp dissector.

Without tshark the tests skip, except under CI / HOTLINE_REQUIRE_SERVICES, where they fail.
Captures and tshark's output stay in pytest's tmp_path (they hold test numbers), not in
the scanned log folder; numbers here are 86-prefixed test data and are never printed.
"""
from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from common.masking import mask_text
from sandbox.pytest_carriers import start_carrier_sim
from sandbox.pytest_postgres import unavailable
from sandbox.pytest_smsc import start_sim_smsc
from sms.smpp import codec as smpp_codec
from sms.carrier import text as smstext
from sms.cmpp import codec as cmpp

pytestmark = pytest.mark.e2e

USER = "8613800138000"
SERVICE = "1069001232901"
LONG_TEXT = ("【示例公积金】您尾号0002的公积金账户于2026-11-26汇缴入账1,608.00元，"
             "当前余额54,513.36元。如有疑问请拨打12329。")


@pytest.fixture
def tshark_tools():
    """tshark and dumpcap, or a skip (a failure under CI)."""
    for tool in ("tshark", "dumpcap"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (Debian package tshark)")


class Capture:
    """dumpcap on the loopback interface, filtered on one TCP port, into a pcapng file."""

    def __init__(self, port: int, path: Path):
        self.path = path
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline, seen = time.monotonic() + 20, b""
        while b"Capturing on" not in seen:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                self.proc.wait(timeout=5)
                # No capture rights here (not root, no setcap): skip, or fail under CI.
                unavailable(f"dumpcap cannot capture on lo: "
                            f"{seen.decode(errors='replace')[-300:]}")
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                seen += self.proc.stderr.read1(4096)
        time.sleep(0.3)  # the filter is compiled and attached before it says so; be safe

    def stop(self) -> None:
        time.sleep(0.3)  # let the last segments reach the ring buffer
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def dissect(path: Path, port: int, protocol: str) -> list[dict]:
    """Every ``protocol`` PDU tshark finds in the capture, in order, as its JSON tree."""
    result = subprocess.run(
        ["tshark", "-r", str(path), "-d", f"tcp.port=={port},{protocol}", "-T", "json", "-x",
         "--no-duplicate-keys"], capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-500:]
    pdus = []
    for packet in json.loads(result.stdout):
        layer = packet["_source"]["layers"].get(protocol)
        if layer is None:
            continue
        pdus += layer if isinstance(layer, list) else [layer]
    return pdus


def flat(tree: dict, prefix: str = "") -> dict:
    """tshark's displayed values by key path; nested trees as "parent/child"."""
    out = {}
    for key, value in tree.items():
        if key.endswith("_raw"):
            continue
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = value
    return out


def raw_of(tree: dict, path: str) -> str:
    """The hex octets tshark attributes to a field (from ``-x``), by key path."""
    *parents, key = path.split("/")
    for parent in parents:
        tree = tree[parent]
    return tree[key + "_raw"][0]


def compare(shown: dict, expected: dict, what: str) -> None:
    """Fail, with values masked, unless tshark shows exactly the expected fields and values."""
    if shown != expected:
        missing = sorted(set(expected) - set(shown))
        extra = sorted(set(shown) - set(expected))
        differ = {k: (shown[k], expected[k]) for k in set(shown) & set(expected)
                  if shown[k] != expected[k]}
        pytest.fail(mask_text(f"{what}: missing {missing}, unexpected {extra}, "
                              f"differing (tshark, codec) {differ}"), pytrace=False)


class RecordingLink:
    """A blocking socket that keeps every frame it sends and receives, by (command, seq)."""

    def __init__(self, port: int, version: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.version = version
        self.splitter = cmpp.frame_splitter()
        self.queue: list[bytes] = []
        self.frames: dict[tuple[int, int], bytes] = {}

    def send(self, pdu, sequence: int) -> None:
        raw = cmpp.encode(pdu, sequence, self.version)
        self.frames[(pdu.COMMAND_ID, sequence)] = raw
        self.sock.sendall(raw)
        time.sleep(0.02)  # one PDU per segment keeps the capture easy to read by eye

    def read(self):
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the ISMG closed the connection")
            self.queue.extend(self.splitter.feed(data))
        raw = self.queue.pop(0)
        frame = cmpp.decode(raw, self.version)
        self.frames[(frame.command_id, frame.sequence)] = raw
        return frame


def cmpp_session(port: int, version: int, sim) -> RecordingLink:
    """Connect, a 2-part UCS2 SUBMIT asking for reports, the reports, an MO, ACTIVE_TEST,
    TERMINATE; every DELIVER answered."""
    link = RecordingLink(port, version)
    link.send(cmpp.make_connect("901234", "secret", datetime.now(), version), 1)
    assert link.read().pdu.status == cmpp.CONNECT_OK
    wide = version == cmpp.V30
    parts = smstext.encode(LONG_TEXT, reference=0x2A).parts
    assert len(parts) == 2
    for number, part in enumerate(parts, 1):
        link.send(cmpp.Submit((USER,), part, src_id=SERVICE, msg_src="901234",
                              service_id="HPF12329", msg_fmt=cmpp.MSG_FMT_UCS2, tp_udhi=1,
                              pk_total=2, pk_number=number, registered_delivery=1,
                              msg_level=1, fee_user_type=2, fee_terminal_id=USER,
                              fee_type="02", fee_code="000010",
                              valid_time="261201120000032+" if wide else "",
                              link_id="LINK-0001" if wide else ""), 1 + number)
        for _ in range(2):  # the SUBMIT_RESP and the report, in either order
            frame = link.read()
            if frame.command_id == cmpp.DELIVER:
                link.send(cmpp.DeliverResp(frame.pdu.msg_id), frame.sequence)
    assert sim.mo(USER, SERVICE, "公积金余额")["ok"]
    mo = link.read()
    assert mo.command_id == cmpp.DELIVER and mo.pdu.report is None
    link.send(cmpp.DeliverResp(mo.pdu.msg_id), mo.sequence)
    link.send(cmpp.ActiveTest(), 9)
    assert link.read().command_id == cmpp.ACTIVE_TEST_RESP
    link.send(cmpp.Terminate(), 10)
    assert link.read().command_id == cmpp.TERMINATE_RESP
    link.sock.close()
    return link


# ---- what the codec meant, in tshark's vocabulary ------------------------------------

def _version_text(version: int) -> str:
    return f"{version >> 4:02d}.{version & 0x0F:02d}"


def _mmdd_time(mmddhhmmss: int) -> str:
    t = f"{mmddhhmmss:010d}"
    return f"{t[0:2]}/{t[2:4]} {t[4:6]}:{t[6:8]}:{t[8:10]}"


def _msg_id(msg_id: cmpp.MsgId, prefix: str = "") -> dict:
    return {
        f"{prefix}cmpp.Msg_Id": f"0x{msg_id.to_int():016x}",
        f"{prefix}cmpp.Msg_Id_tree/cmpp.Msg_Id.timestamp":
            f"{msg_id.month:02d}/{msg_id.day:02d} {msg_id.hour:02d}:{msg_id.minute:02d}:"
            f"{msg_id.second:02d}",
        # tshark's dissector shows the 22-bit ISMG code shifted right by 8 bits.
        f"{prefix}cmpp.Msg_Id_tree/cmpp.Msg_Id.ismg_code": str(msg_id.gateway >> 8),
        f"{prefix}cmpp.Msg_Id_tree/cmpp.Msg_Id.sequence_id": str(msg_id.sequence),
    }


def expected_cmpp(raw: bytes, version: int) -> tuple[dict, dict]:
    """(displayed values, raw hex of binary fields) tshark should show for one of our frames."""
    frame = cmpp.decode(raw, version)
    p = frame.pdu
    shown = {"cmpp.Total_Length": str(len(raw)), "cmpp.Command_Id": f"0x{frame.command_id:08x}",
             "cmpp.Sequence_Id": str(frame.sequence)}
    raws: dict[str, str] = {}
    if isinstance(p, cmpp.Connect):
        shown.update({"cmpp.connect.Source_Addr": p.source_addr,
                      "cmpp.connect.AuthenticatorSource": "MD5 Hash",
                      "cmpp.Version": _version_text(p.version),
                      "cmpp.connect.Timestamp": _mmdd_time(p.timestamp)})
        raws["cmpp.connect.AuthenticatorSource"] = p.authenticator.hex()
    elif isinstance(p, cmpp.ConnectResp):
        shown.update({"cmpp.connect_resp.Status": str(p.status),
                      "cmpp.connect_resp.AuthenticatorISMG": "MD5 Hash",
                      "cmpp.Version": _version_text(p.version)})
        raws["cmpp.connect_resp.AuthenticatorISMG"] = p.authenticator.hex()
    elif isinstance(p, cmpp.Submit):
        shown.update(_msg_id(p.msg_id))
        shown.update({
            "cmpp.submit.Pk_total": str(p.pk_total), "cmpp.submit.Pk_number": str(p.pk_number),
            "cmpp.submit.Registered_Delivery": str(p.registered_delivery),
            "cmpp.submit.Msg_level": str(p.msg_level), "cmpp.Servicd_Id": p.service_id,
            "cmpp.submit.Fee_UserType": str(p.fee_user_type),
            "cmpp.submit.Fee_terminal_Id": p.fee_terminal_id,
            "cmpp.submit.Fee_terminal_type": str(p.fee_terminal_type),
            "cmpp.TP_pId": str(p.tp_pid), "cmpp.TP_udhi": str(p.tp_udhi),
            "cmpp.Msg_Fmt": str(p.msg_fmt), "cmpp.submit.Msg_src": p.msg_src,
            "cmpp.submit.FeeType": p.fee_type, "cmpp.submit.FeeCode": p.fee_code,
            "cmpp.submit.Valld_Time": p.valid_time, "cmpp.submit.At_time": p.at_time,
            "cmpp.submit.Src_Id": p.src_id,
            "cmpp.submit.DestUsr_tl": str(len(p.dest_terminal_ids)),
            "cmpp.Dest_terminal_Id": p.dest_terminal_ids[0],
            "cmpp.submit.Dest_terminal_type": str(p.dest_terminal_type),
            "cmpp.Msg_Length": str(len(p.content)), "cmpp.Msg_Content": "SMS Messages",
            "cmpp.LinkID": p.link_id})
        raws["cmpp.Msg_Content"] = p.content.hex()
    elif isinstance(p, (cmpp.SubmitResp, cmpp.DeliverResp)):
        shown.update(_msg_id(p.msg_id))
        kind = "submit_resp" if isinstance(p, cmpp.SubmitResp) else "deliver_resp"
        shown[f"cmpp.{kind}.Result"] = str(p.result)
    elif isinstance(p, cmpp.Deliver):
        content = cmpp.encode_report(p.report, version) if p.report else p.content
        shown.update(_msg_id(p.msg_id))
        shown.update({
            "cmpp.deliver.Dest_Id": p.dest_id, "cmpp.Servicd_Id": p.service_id,
            "cmpp.TP_pId": str(p.tp_pid), "cmpp.TP_udhi": str(p.tp_udhi),
            "cmpp.Msg_Fmt": str(p.msg_fmt), "cmpp.deliver.Src_terminal_Id": p.src_terminal_id,
            "cmpp.deliver.Src_terminal_type": str(p.src_terminal_type),
            "cmpp.deliver.Registered_Delivery": str(p.registered_delivery),
            "cmpp.Msg_Length": str(len(content)), "cmpp.LinkID": p.link_id})
        if p.report is None:
            shown["cmpp.Msg_Content"] = "SMS Messages"
            raws["cmpp.Msg_Content"] = p.content.hex()
        else:
            r, prefix = p.report, "cmpp.deliver.Report/"
            shown.update(_msg_id(r.msg_id, prefix))
            shown.update({f"{prefix}cmpp.deliver.Report.Status": r.stat,
                          f"{prefix}cmpp.deliver.Report.Submit_time": r.submit_time,
                          f"{prefix}cmpp.deliver.Report.Done_time": r.done_time,
                          f"{prefix}cmpp.Dest_terminal_Id": r.dest_terminal_id,
                          f"{prefix}cmpp.Report.SMSC_sequence": str(r.smsc_sequence)})
            raws["cmpp.deliver.Report"] = content.hex()
    return shown, raws


def _command_key(tree: dict) -> tuple[int, int]:
    return int(tree["cmpp.Command_Id"], 16), int(tree["cmpp.Sequence_Id"])


# ---- CMPP 3.0 -------------------------------------------------------------------------

def test_tshark_decodes_a_cmpp3_session_as_the_codec_meant(tshark_tools, log_dir, tmp_path):
    """Every field tshark shows for every PDU of a real CMPP 3.0 capture (connect, long
    UCS2 submit, reports, MO, active test, terminate) equals the codec's meaning."""
    sim = start_carrier_sim("cmpp", log_dir)
    capture = Capture(sim.port, tmp_path / "cmpp3.pcapng")
    try:
        link = cmpp_session(sim.port, cmpp.V30, sim)
    finally:
        capture.stop()
        sim.stop()
    pdus = dissect(capture.path, sim.port, "cmpp")
    seen = [_command_key(tree) for tree in pdus]
    assert sorted(seen) == sorted(link.frames), "tshark saw other PDUs than the session's"
    kinds = {command for command, _seq in seen}
    assert kinds == {cmpp.CONNECT, cmpp.CONNECT_RESP, cmpp.SUBMIT, cmpp.SUBMIT_RESP,
                     cmpp.DELIVER, cmpp.DELIVER_RESP, cmpp.ACTIVE_TEST, cmpp.ACTIVE_TEST_RESP,
                     cmpp.TERMINATE, cmpp.TERMINATE_RESP}
    reports = 0
    for tree in pdus:
        raw = link.frames[_command_key(tree)]
        shown, raws = expected_cmpp(raw, cmpp.V30)
        compare(flat(tree), shown, f"{tree['cmpp.Command_Id']} seq {tree['cmpp.Sequence_Id']}")
        for path, octets in raws.items():
            assert raw_of(tree, path) == octets, f"raw octets of {path} differ"
        reports += "cmpp.deliver.Report" in tree
    assert reports == 2


# ---- CMPP 2.0: only what tshark decodes at the 2.0 offsets ----------------------------

_V20_DECODED = {
    cmpp.CONNECT: ("cmpp.connect.Source_Addr", "cmpp.connect.AuthenticatorSource",
                   "cmpp.Version", "cmpp.connect.Timestamp"),
    cmpp.SUBMIT: ("cmpp.Msg_Id", "cmpp.Msg_Id_tree/", "cmpp.submit.Pk_total",
                  "cmpp.submit.Pk_number", "cmpp.submit.Registered_Delivery",
                  "cmpp.submit.Msg_level", "cmpp.Servicd_Id", "cmpp.submit.Fee_UserType"),
    cmpp.DELIVER: ("cmpp.Msg_Id", "cmpp.Msg_Id_tree/", "cmpp.deliver.Dest_Id",
                   "cmpp.Servicd_Id", "cmpp.TP_pId", "cmpp.TP_udhi", "cmpp.Msg_Fmt"),
    cmpp.SUBMIT_RESP: ("cmpp.Msg_Id", "cmpp.Msg_Id_tree/"),
    cmpp.DELIVER_RESP: ("cmpp.Msg_Id", "cmpp.Msg_Id_tree/"),
}
_HEADER = ("cmpp.Total_Length", "cmpp.Command_Id", "cmpp.Sequence_Id")


def test_tshark_decodes_what_it_knows_of_a_cmpp2_session(tshark_tools, log_dir, tmp_path):
    """CMPP 2.0: tshark's 3.0-only dissector still decodes the header of every PDU,
    CONNECT whole and the leading fields of SUBMIT, DELIVER and the responses; those
    equal the codec's meaning (the rest it reads at 3.0 offsets, and is not compared)."""
    sim = start_carrier_sim("cmpp", log_dir)
    capture = Capture(sim.port, tmp_path / "cmpp2.pcapng")
    try:
        link = cmpp_session(sim.port, cmpp.V20, sim)
    finally:
        capture.stop()
        sim.stop()
    pdus = dissect(capture.path, sim.port, "cmpp")
    assert sorted(_command_key(t) for t in pdus) == sorted(link.frames)
    compared = 0
    for tree in pdus:
        key = _command_key(tree)
        shown, raws = expected_cmpp(link.frames[key], cmpp.V20)
        wanted = _HEADER + _V20_DECODED.get(key[0], ())
        keep = {k: v for k, v in shown.items() if k.startswith(wanted)}
        got = {k: v for k, v in flat(tree).items() if k in keep}
        compare(got, keep, f"2.0 {tree['cmpp.Command_Id']} seq {tree['cmpp.Sequence_Id']}")
        if key[0] == cmpp.CONNECT:
            assert raw_of(tree, "cmpp.connect.AuthenticatorSource") == \
                raws["cmpp.connect.AuthenticatorSource"]
        compared += len(keep)
    assert compared > 60


# ---- SMPP -------------------------------------------------------------------------------

class SmppLink:
    """A blocking SMPP client over sms/smpp/codec.py that keeps every frame by (id, seq)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.splitter = smpp_codec.FrameSplitter()
        self.queue: list[bytes] = []
        self.frames: dict[tuple[int, int], bytes] = {}

    def send(self, name: str, sequence: int, **fields) -> None:
        raw = smpp_codec.encode(name, sequence, **fields)
        self.frames[smpp_codec.header(raw)[1:4:2]] = raw
        self.sock.sendall(raw)
        time.sleep(0.02)

    def read(self):
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the SMSC closed the connection")
            self.queue.extend(self.splitter.feed(data))
        raw = self.queue.pop(0)
        self.frames[smpp_codec.header(raw)[1:4:2]] = raw
        return smpp_codec.decode(raw)


def _hex8(value) -> str:
    return f"0x{(value or 0):02x}"


def expected_smpp(raw: bytes) -> tuple[dict, dict]:
    """(displayed values, raw hex) tshark's smpp dissector should show for one of our frames.

    tshark splits esm_class and registered_delivery into their bit fields, shows an empty
    service_type as "(Default)" and empty times as relative zero, the message octets as
    colon hex, and a UCS2 message (UDH removed) as text; a status on responses only.
    """
    length, command_id, status, sequence = smpp_codec.header(raw)
    pdu = smpp_codec.decode(raw)
    shown = {"smpp.command_length": str(length), "smpp.command_id": f"0x{command_id:08x}",
             "smpp.sequence_number": str(sequence)}
    raws: dict[str, str] = {}
    if command_id & smpp_codec.RESPONSE_BIT:
        shown["smpp.command_status"] = f"0x{status:08x}"
    text = smpp_codec.as_text
    if pdu.command == "bind_transceiver":
        shown.update({"smpp.system_id": text(pdu.system_id), "smpp.password": text(pdu.password),
                      "smpp.interface_version": str(pdu.interface_version),
                      "smpp.addr_ton": _hex8(pdu.addr_ton), "smpp.addr_npi": _hex8(pdu.addr_npi)})
        assert not text(pdu.system_type) and not text(pdu.address_range)  # not shown if empty
    elif pdu.command == "bind_transceiver_resp":
        shown["smpp.system_id"] = text(pdu.system_id)
    elif pdu.command == "submit_sm_resp":
        shown["smpp.message_id"] = text(pdu.message_id)
    elif pdu.command in ("submit_sm", "deliver_sm"):
        message = pdu.short_message or b""
        esm, regdel = pdu.esm_class or 0, pdu.registered_delivery or 0
        assert not text(pdu.schedule_delivery_time) and not text(pdu.validity_period)
        shown.update({
            "smpp.service_type": text(pdu.service_type) or "(Default)",
            "smpp.source_addr_ton": _hex8(pdu.source_addr_ton),
            "smpp.source_addr_npi": _hex8(pdu.source_addr_npi),
            "smpp.source_addr": text(pdu.source_addr),
            "smpp.dest_addr_ton": _hex8(pdu.dest_addr_ton),
            "smpp.dest_addr_npi": _hex8(pdu.dest_addr_npi),
            "smpp.destination_addr": text(pdu.destination_addr),
            "smpp.esm.submit.msg_mode": _hex8(esm & 0x03),
            "smpp.esm.submit.msg_type": _hex8((esm >> 2) & 0x0F),
            "smpp.esm.submit.features": _hex8((esm >> 6) & 0x03),
            "smpp.protocol_id": _hex8(pdu.protocol_id),
            "smpp.priority_flag": _hex8(pdu.priority_flag),
            "smpp.schedule_delivery_time_r": "0.000000000",
            "smpp.validity_period_r": "0.000000000",
            "smpp.regdel.receipt": _hex8(regdel & 0x03),
            "smpp.regdel.acks": _hex8((regdel >> 2) & 0x03),
            "smpp.regdel.notif": _hex8((regdel >> 4) & 0x01),
            "smpp.replace_if_present_flag": _hex8(pdu.replace_if_present_flag),
            "smpp.data_coding": _hex8(pdu.data_coding),
            "smpp.sm_default_msg_id": str(pdu.sm_default_msg_id or 0),
            "smpp.sm_length": str(len(message)),
            "smpp.message": ":".join(f"{b:02x}" for b in message),
        })
        raws["smpp.message"] = message.hex()
        if pdu.data_coding == smstext.DC_UCS2:
            _udh, payload = smstext.split_udh(message, esm)
            shown["smpp.message_text"] = payload.decode("utf-16-be")
    return shown, raws


def test_tshark_decodes_smpp_submit_and_deliver_as_the_codec_meant(tshark_tools, log_dir,
                                                                   tmp_path):
    """tshark's SMPP dissector reads a submit_sm (UCS2 with a UDH), its response, the DLR
    deliver_sm and an MO deliver_sm with the header, addresses, flags, lengths and
    message octets sms/smpp/codec.py meant."""
    smsc = start_sim_smsc(log_dir, dlr_delay=0.05)
    capture = Capture(smsc.port, tmp_path / "smpp.pcapng")
    try:
        link = SmppLink(smsc.port)
        link.send("bind_transceiver", 1, system_id="hotline", password="secret",
                  interface_version=0x34)
        assert link.read().status == smpp_codec.ESME_ROK
        part = smstext.encode(LONG_TEXT, reference=0x2B).parts[0]
        link.send("submit_sm", 2, source_addr="12329", destination_addr=USER,
                  short_message=part, data_coding=8, esm_class=0x40, registered_delivery=1,
                  source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1, priority_flag=1)
        delivers = 0
        while delivers < 2:
            pdu = link.read()
            if pdu.command == "deliver_sm":
                delivers += 1
                link.send("deliver_sm_resp", pdu.sequence)
            if pdu.command == "submit_sm_resp":
                smsc.post("/mo", {"source": USER, "destination": "12329", "text": "YE"})
        link.send("unbind", 3)
        assert link.read().command == "unbind_resp"
        link.sock.close()
    finally:
        capture.stop()
        smsc.stop()
    pdus = dissect(capture.path, smsc.port, "smpp")
    assert sorted((int(t["smpp.command_id"], 16), int(t["smpp.sequence_number"]))
                  for t in pdus) == sorted(link.frames)
    checked = set()
    for tree in pdus:
        raw = link.frames[(int(tree["smpp.command_id"], 16), int(tree["smpp.sequence_number"]))]
        shown, raws = expected_smpp(raw)
        compare(flat(tree), shown, f"smpp {tree['smpp.command_id']} seq "
                                   f"{tree['smpp.sequence_number']}")
        for path, octets in raws.items():
            assert raw_of(tree, path) == octets, f"raw octets of {path} differ"
        checked.add(smpp_codec.decode(raw).command)
    assert {"bind_transceiver", "submit_sm", "submit_sm_resp", "deliver_sm",
            "deliver_sm_resp"} <= checked
