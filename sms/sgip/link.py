"""The SGIP link to an SMG, and the listener the SMG connects back to.

The SP binds to the SMG (login type 1) and sends Submits; the SMG sends MO
(Deliver) and status reports (Report) over its own connection to the SP's
listener (``SgipListener``), after a Bind (login type 2) that the listener
checks against ``smg_login``/``smg_password``. Receipts are matched by the
Submit's sequence number (node id, time, counter), the only id SGIP has.

SGIP has no keep-alive: a side with nothing to send unbinds. The SP's link, after
``idle`` seconds with nothing sent and nothing in flight, sends Unbind, waits for
Unbind_Resp and closes, then stays ``parked`` (no reconnect) until the router has a
part for it (``common.link.Link.park``/``demand``); an Unbind from the SMG parks it
the same way. The listener unbinds the SMG's idle connections too.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from sms.carrier import text as _text
from sms.carrier.links import CarrierLink, mo_message, mobile, source_number
from sms.carrier.protocol import LoginRefused, Prepared
from sms.carrier.receipts import Receipt
from sms.sgip import codec
from sms.sgip.protocol import SgipProtocol

_BIND_RESULT = {codec.RESULT_BAD_LOGIN: "wrong login or password",
                codec.RESULT_REPEATED_LOGIN: "already bound",
                codec.RESULT_TOO_MANY_CONNECTIONS: "too many connections",
                codec.RESULT_BAD_LOGIN_TYPE: "wrong login type"}
_REPORT_STATE = {codec.STATE_DELIVERED: "DELIVRD", codec.STATE_WAITING: "ENROUTE",
                 codec.STATE_FAILED: "UNDELIV"}


class SgipLink(CarrierLink):
    """The SP's connection to the SMG: it binds and submits; MO and reports come back
    through the listener."""

    protocol_class = SgipProtocol
    login_verb = "Bind"

    def protocol_options(self) -> dict:
        return dict(response_timeout=self.config.response_timeout, node_id=self.config.node_id,
                    idle=self.config.idle, on_idle=self.park, on_goodbye=self._unbound)

    def _unbound(self) -> None:
        """The SMG unbound us (it found the link idle): parked, not lost."""
        self.park(say_goodbye=False)

    def log_in(self, protocol: SgipProtocol) -> Deferred:
        c = self.config

        def check(answer) -> None:
            if answer.result != codec.RESULT_OK:
                why = _BIND_RESULT.get(answer.result, "refused")
                raise LoginRefused(answer.result, f"SGIP Bind ({why})")

        bind = codec.Bind(codec.LOGIN_SP_TO_SMG, c.system_id, c.password)
        return protocol.request(bind, "Bind", checked=False).addCallback(check)

    @staticmethod
    def message_id(answer) -> str:
        """The Submit's own sequence number: what the SMG's Report names."""
        return str(answer.sequence)

    @staticmethod
    def submit_pdu(part, config) -> codec.Submit:
        content, fmt = _text.for_carrier(part.short_message, part.data_coding, part.esm_class,
                                         config.gbk)
        src = source_number(part, config)
        return codec.Submit(("86" + part.destination,), content, sp_number=src,
                            corp_id=config.corp_id, service_type=config.service_id,
                            priority=part.priority_flag,
                            report_flag=1 if part.registered_delivery else 2,
                            tp_udhi=1 if part.esm_class & _text.ESM_UDHI else 0,
                            message_coding=fmt)

    @staticmethod
    def encode_ahead(pdu, config) -> Prepared:
        return SgipProtocol.prepared(codec.encode(pdu, SgipProtocol.PLACEHOLDER_SEQUENCE))

    @staticmethod
    def incoming(pdu, smsc: str, now: Callable[[], datetime]):
        if isinstance(pdu, codec.Report):
            state = _REPORT_STATE.get(pdu.state, "UNKNOWN")
            error = None if state == "DELIVRD" else f"{pdu.error_code:03d}"
            return Receipt(str(pdu.submit_sequence), state, error, now(), smsc,
                           source=mobile(pdu.user_number), raw_id=str(pdu.submit_sequence))
        return mo_message(pdu.user_number, pdu.sp_number, pdu.content, pdu.message_coding,
                          pdu.tp_udhi, smsc, now())


class SgipListener(Service):
    """The SP's SGIP server: accepts the SMG's connections, checks their Bind, and hands
    Deliver and Report to ``on_deliver`` (answered once it fired)."""

    log = Logger(namespace="hotline.sms.sgip")

    def __init__(self, config, reactor, on_deliver, endpoint=None):
        self.setName(f"{config.name}-listener")
        self.config, self.reactor, self.on_deliver = config, reactor, on_deliver
        self.endpoint = endpoint if endpoint is not None else serverFromString(reactor,
                                                                                config.listen)
        self.port = None
        self.connections = 0
        self.open: set[SgipProtocol] = set()  # the SMG's connections now open

    def check_bind(self, bind: codec.Bind) -> int:
        if bind.login_type != codec.LOGIN_SMG_TO_SP:
            return codec.RESULT_BAD_LOGIN_TYPE
        name_ok = hmac.compare_digest(bind.login_name.encode(), self.config.smg_login.encode())
        password_ok = hmac.compare_digest(bind.login_password.encode(),
                                          self.config.smg_password.encode())
        return codec.RESULT_OK if name_ok and password_ok else codec.RESULT_BAD_LOGIN

    def buildProtocol(self, addr) -> SgipProtocol:
        self.connections += 1
        protocol = _ListenerSide(self.reactor, node_id=self.config.node_id,
                                 check_bind=self.check_bind, on_deliver=self.on_deliver,
                                 response_timeout=self.config.response_timeout,
                                 idle=self.config.idle, name=f"{self.config.name}-smg")
        protocol.listener = self
        return protocol

    def startService(self) -> Deferred:
        super().startService()
        factory = Factory()
        factory.buildProtocol = self.buildProtocol
        d = self.endpoint.listen(factory)

        def listening(port):
            self.port = port
            return port

        return d.addCallback(listening)

    def stopService(self):
        """Stop listening and close the SMG's open connections: a Deliver or Report not yet
        answered is sent again by the SMG, to the next daemon."""
        super().stopService()
        for protocol in list(self.open):
            protocol.transport.loseConnection()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


class _ListenerSide(SgipProtocol):
    """An SMG's connection to the listener, which keeps count of the open ones."""

    listener: SgipListener

    def connectionMade(self) -> None:
        super().connectionMade()
        self.listener.open.add(self)

    def connectionLost(self, reason=None) -> None:
        self.listener.open.discard(self)
        super().connectionLost(reason)
