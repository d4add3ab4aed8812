"""The SMGP link to an SMGW: Login in ``log_in``, Exit on stop, parts as Submits.

A Status other than 0 (21: wrong secret) or an AuthenticatorServer that does not
prove the shared secret refuses the login (``LoginRefused``; the link backs off).
Receipts are matched by the 10-octet MsgID, as 20 hex digits.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from twisted.internet.defer import Deferred

from sms.carrier import text as _text
from sms.carrier.links import CarrierLink, beijing_now, mo_message, receipt, source_number
from sms.carrier.protocol import LoginRefused, Prepared
from sms.smgp import codec
from sms.smgp.protocol import SmgpProtocol

_LOGIN_STATUS = {codec.STATUS_BAD_AUTH: "wrong secret", codec.STATUS_BAD_IP: "address refused",
                 codec.STATUS_TOO_MANY_CONNECTIONS: "too many connections",
                 codec.STATUS_VERSION_TOO_HIGH: "version too high"}


class SmgpLink(CarrierLink):
    """One SMGP connection in transmit mode (send and receive on it)."""

    protocol_class = SmgpProtocol
    login_verb = "Login"

    def log_in(self, protocol: SmgpProtocol) -> Deferred:
        c = self.config
        login = codec.make_login(c.system_id, c.password, beijing_now(self.clock))

        def check(resp: codec.LoginResp) -> None:
            if resp.status != codec.STATUS_OK:
                why = _LOGIN_STATUS.get(resp.status, "refused")
                raise LoginRefused(resp.status, f"SMGP Login ({why})")
            if not codec.verify_login_resp(resp, login.authenticator, c.password):
                raise LoginRefused(0, "SMGP Login (the SMGW's authenticator does not verify)")

        return protocol.request(login, "Login", checked=False).addCallback(check)

    @staticmethod
    def submit_pdu(part, config) -> codec.Submit:
        content, fmt = _text.for_carrier(part.short_message, part.data_coding, part.esm_class,
                                         config.gbk)
        options = codec.NO_OPTIONS
        if part.esm_class & _text.ESM_UDHI:
            total, number = _text.concatenation(part.short_message, part.esm_class)
            options = codec.Options(tp_udhi=1, pk_total=total, pk_number=number)
        src = source_number(part, config)
        return codec.Submit((part.destination,), content, src_term_id=src, msg_format=fmt,
                            need_report=1 if part.registered_delivery else 0,
                            priority=part.priority_flag, service_id=config.service_id,
                            options=options)

    @staticmethod
    def encode_ahead(pdu, config) -> Prepared:
        return SmgpProtocol.prepared(codec.encode(pdu, SmgpProtocol.PLACEHOLDER_SEQUENCE))

    @staticmethod
    def incoming(pdu: codec.Deliver, smsc: str, now: Callable[[], datetime]):
        report = pdu.report
        if report is not None:
            return receipt(str(report.msg_id), report.stat, report.done_time, smsc, report.err,
                           number=pdu.src_term_id)
        return mo_message(pdu.src_term_id, pdu.dest_term_id, pdu.content, pdu.msg_format,
                          pdu.options.tp_udhi or 0, smsc, now())
