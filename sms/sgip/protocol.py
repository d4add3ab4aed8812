"""SGIP 1.2 over one TCP connection, both ways: the SP's link to the SMG, and the SMG's
connection back to the SP's listener.

SGIP numbers requests with 12 octets (node id, MMDDHHMMSS, counter) and has no
keep-alive: the side with nothing to say unbinds instead. Submit_Resp carries no
message id; the Submit's own sequence number is what the SMG's Report names, so
a request's Deferred fires with ``Answer(sequence, response)``. On the listener
side (``check_bind`` given) the first request must be a Bind the SP accepts;
anything before it is refused and the connection closed. Result 11 (node busy)
and 33 (queue full) are flow control.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import ClassVar

from sms.carrier.binary_pdu import RESPONSE_BIT, Frame
from sms.carrier.links import beijing_now
from sms.carrier.protocol import CarrierProtocol
from sms.sgip import codec

_COUNTER_MAX = 0xFFFFFFFF


class NodeCounter:
    """The counter field of one node id's sequence numbers, 1 to 2**32 - 1 and round again.

    A Report names its Submit by (node id, second, counter) and nothing else, so every
    connection of a node id in this process counts on one counter: an account's several
    connections, or a link and its next connection after a cut, each counting from 1
    would give two Submits of one second the same name, and a report the wrong part.
    """

    _by_node: ClassVar[dict[int, NodeCounter]] = {}

    def __init__(self) -> None:
        self.value = 0

    @classmethod
    def of(cls, node_id: int) -> NodeCounter:
        return cls._by_node.setdefault(node_id, cls())

    def next(self) -> int:
        self.value = self.value + 1 if self.value < _COUNTER_MAX else 1
        return self.value


@dataclass(frozen=True)
class Answer:
    """An SGIP response with the sequence number of the request it answers."""

    sequence: codec.SgipSequence
    pdu: object

    @property
    def result(self) -> int:
        return self.pdu.result


class SgipProtocol(CarrierProtocol):
    """One SGIP connection; ``check_bind(bind) -> result`` makes it the listener side."""

    protocol_name = "SGIP"
    ACTIVE_TEST = None
    TERMINATE = codec.UNBIND
    DELIVERS = frozenset({codec.DELIVER, codec.REPORT})
    THROTTLING = frozenset({codec.RESULT_NODE_BUSY, codec.RESULT_QUEUE_FULL})
    PLACEHOLDER_SEQUENCE = codec.SgipSequence(0, 0, 0)

    def __init__(self, clock, *, node_id: int = 0,
                 check_bind: Callable[[codec.Bind], int] | None = None, **kw):
        self.node_id = node_id
        self.check_bind = check_bind
        self.peer_bound = False
        self._counter = NodeCounter.of(node_id)
        super().__init__(clock, **kw)

    def frame_splitter(self):
        return codec.frame_splitter()

    def decode(self, raw: bytes) -> Frame:
        return codec.decode(raw)

    def encode(self, pdu, sequence) -> bytes:
        return codec.encode(pdu, sequence)

    def next_sequence(self) -> codec.SgipSequence:
        return codec.SgipSequence.at(self.node_id, beijing_now(self.clock), self._counter.next())

    @staticmethod
    def sequence_octets(sequence: codec.SgipSequence) -> bytes:
        return sequence.to_bytes()

    def status(self, response) -> int:
        return getattr(response, "result", 0)

    def answer_of(self, frame: Frame) -> Answer:
        return Answer(frame.sequence, frame.pdu)

    def reply(self, frame: Frame, ok: bool):
        result = codec.RESULT_OK if ok else codec.RESULT_NODE_BUSY
        if frame.command_id == codec.DELIVER:
            return codec.deliver_resp(result)
        if frame.command_id == codec.REPORT:
            return codec.report_resp(result)
        return codec.UnbindResp()

    def reject(self, command_id: int, sequence):
        if command_id in (codec.DELIVER, codec.REPORT, codec.BIND):
            return codec.Response(command_id | RESPONSE_BIT, codec.RESULT_BAD_PARAMETER)
        return None

    def terminate_pdu(self):
        return codec.Unbind()

    def _request_received(self, frame: Frame) -> None:
        if frame.command_id == codec.BIND:
            self._bind(frame)
        elif self.check_bind is not None and not self.peer_bound:
            self.log.warn("{name}: request 0x{cid:08X} before a Bind; closing", name=self.name,
                          cid=frame.command_id)
            if frame.command_id in (codec.DELIVER, codec.REPORT):
                self._write(codec.Response(frame.command_id | RESPONSE_BIT,
                                           codec.RESULT_BAD_LOGIN), frame.sequence)
            self.transport.loseConnection()
        else:
            super()._request_received(frame)

    def _bind(self, frame: Frame) -> None:
        """The SMG binds to the SP's listener: check its login type, name and password."""
        bind = frame.pdu
        if self.check_bind is None:
            result = codec.RESULT_BAD_LOGIN_TYPE  # we are the one who binds on this link
        elif self.peer_bound:
            result = codec.RESULT_REPEATED_LOGIN
        else:
            result = self.check_bind(bind)
        self._write(codec.bind_resp(result), frame.sequence)
        if result == codec.RESULT_OK:
            self.peer_bound = True
        else:
            self.log.warn("{name}: Bind refused (result {result})", name=self.name,
                          result=result)
            self.transport.loseConnection()
