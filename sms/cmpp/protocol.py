"""CMPP 2.0/3.0 over one TCP connection: the shared carrier mechanism with CMPP's PDUs.

The version is fixed per connection (the CONNECT's): 3.0 and 2.0 differ inside the
same command ids, so the codec is called with it. Sequence_Id counts from 1 and
wraps below 2^31. A DELIVER the handler could not commit is answered with result
8 (flow control) so the ISMG sends it again; one that does not decode, with
result 1 (bad structure) so the ISMG stops.
"""
from __future__ import annotations

from sms.carrier.binary_pdu import Frame
from sms.carrier.protocol import CarrierProtocol
from sms.cmpp import codec

_SEQ_MAX = 0x7FFFFFFF


class CmppProtocol(CarrierProtocol):
    """One SP-side CMPP connection (``version`` 0x20 or 0x30)."""

    protocol_name = "CMPP"
    ACTIVE_TEST = codec.ACTIVE_TEST
    TERMINATE = codec.TERMINATE
    DELIVERS = frozenset({codec.DELIVER})
    THROTTLING = frozenset({codec.RESULT_FLOW_CONTROL})

    def __init__(self, clock, *, version: int = codec.V30, **kw):
        self.version = version
        self._decode = codec.decoder(version)  # raises InvalidField for a version not 2.0/3.0
        self._sequence = 0
        super().__init__(clock, **kw)

    def frame_splitter(self):
        return codec.frame_splitter()

    def decode(self, raw: bytes) -> Frame:
        return self._decode(raw)

    def encode(self, pdu, sequence) -> bytes:
        return codec.encode(pdu, sequence, self.version)

    def next_sequence(self) -> int:
        self._sequence = self._sequence + 1 if self._sequence < _SEQ_MAX else 1
        return self._sequence

    def status(self, response) -> int:
        return getattr(response, "result", 0)

    def reply_octets(self, frame: Frame, ok: bool) -> bytes:
        if frame.command_id == codec.DELIVER:  # every status report's answer
            return codec.encode_deliver_resp(
                frame.pdu.msg_id, codec.RESULT_OK if ok else codec.RESULT_FLOW_CONTROL,
                frame.sequence, self.version)
        return super().reply_octets(frame, ok)

    def reply(self, frame: Frame, ok: bool):
        if frame.command_id == codec.DELIVER:
            return codec.DeliverResp(frame.pdu.msg_id,
                                     codec.RESULT_OK if ok else codec.RESULT_FLOW_CONTROL)
        if frame.command_id == codec.ACTIVE_TEST:
            return codec.ActiveTestResp()
        return codec.TerminateResp()

    def reject(self, command_id: int, sequence):
        if command_id == codec.DELIVER:
            return codec.DeliverResp(codec.ZERO_MSG_ID, codec.RESULT_BAD_STRUCTURE)
        return None

    def active_test_pdu(self):
        return codec.ActiveTest()

    def terminate_pdu(self):
        return codec.Terminate()
