"""SMGP 3.0 over one TCP connection: the shared carrier mechanism with SMGP's PDUs.

Status 1 (system busy) is SMGP's flow control. A Deliver the handler could not
commit is answered "system busy" so the SMGW sends it again; one that does not
decode, with 10 (bad structure).
"""
from __future__ import annotations

from sms.carrier.binary_pdu import Frame
from sms.carrier.protocol import CarrierProtocol
from sms.smgp import codec

_SEQ_MAX = 0x7FFFFFFF


class SmgpProtocol(CarrierProtocol):
    """One SP-side SMGP connection."""

    protocol_name = "SMGP"
    ACTIVE_TEST = codec.ACTIVE_TEST
    TERMINATE = codec.EXIT
    DELIVERS = frozenset({codec.DELIVER})
    THROTTLING = frozenset({codec.STATUS_SYSTEM_BUSY})

    def __init__(self, clock, **kw):
        self._sequence = 0
        super().__init__(clock, **kw)

    def frame_splitter(self):
        return codec.frame_splitter()

    def decode(self, raw: bytes) -> Frame:
        return codec.decode(raw)

    def encode(self, pdu, sequence) -> bytes:
        return codec.encode(pdu, sequence)

    def next_sequence(self) -> int:
        self._sequence = self._sequence + 1 if self._sequence < _SEQ_MAX else 1
        return self._sequence

    def status(self, response) -> int:
        return getattr(response, "status", 0)

    def reply(self, frame: Frame, ok: bool):
        if frame.command_id == codec.DELIVER:
            return codec.DeliverResp(frame.pdu.msg_id,
                                     codec.STATUS_OK if ok else codec.STATUS_SYSTEM_BUSY)
        if frame.command_id == codec.ACTIVE_TEST:
            return codec.ActiveTestResp()
        return codec.ExitResp()

    def reject(self, command_id: int, sequence):
        if command_id == codec.DELIVER:
            return codec.DeliverResp(codec.ZERO_MSG_ID, codec.STATUS_BAD_STRUCTURE)
        return None

    def active_test_pdu(self):
        return codec.ActiveTest()

    def terminate_pdu(self):
        return codec.Exit()
