"""The CMPP link to an ISMG: CONNECT in ``log_in``, TERMINATE on stop, parts as SUBMITs.

The login is refused when the ISMG's Status is not 0 (3: wrong secret) or when
its AuthenticatorISMG does not prove the shared secret (an impostor or a
misconfigured ISMG): either way ``LoginRefused``, and the link backs off.
Receipts are matched by the Msg_Id of SUBMIT_RESP, in its 22-digit form.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from twisted.internet.defer import Deferred

from sms.carrier import text as _text
from sms.carrier.links import CarrierLink, beijing_now, mo_message, receipt, source_number
from sms.carrier.protocol import LoginRefused, Prepared
from sms.cmpp import codec
from sms.cmpp.protocol import CmppProtocol

_CONNECT_STATUS = {1: "bad structure", 2: "unknown SP id", 3: "wrong secret",
                   4: "version too high"}


class CmppLink(CarrierLink):
    """One CMPP connection (2.0 or 3.0 by ``protocol = cmpp2|cmpp3``)."""

    protocol_class = CmppProtocol
    login_verb = "CONNECT"

    @property
    def version(self) -> int:
        return _version(self.config)

    def protocol_options(self) -> dict:
        return dict(super().protocol_options(), version=self.version)

    def log_in(self, protocol: CmppProtocol) -> Deferred:
        c = self.config
        connect = codec.make_connect(c.system_id, c.password, beijing_now(self.clock),
                                     self.version)

        def check(resp: codec.ConnectResp) -> None:
            if resp.status != codec.CONNECT_OK:
                why = _CONNECT_STATUS.get(resp.status, "refused")
                raise LoginRefused(resp.status, f"CMPP CONNECT ({why})")
            if not codec.verify_connect_resp(resp, connect.authenticator, c.password,
                                             self.version):
                raise LoginRefused(0, "CMPP CONNECT (the ISMG's authenticator does not verify)")

        return protocol.request(connect, "CONNECT", checked=False).addCallback(check)

    @staticmethod
    def submit_pdu(part, config) -> codec.Submit:
        """The SUBMIT for one of the outbox's parts (``sms.carrier.router.SubmitPart``)."""
        content, fields = _submit_fields(part, config)
        return codec.Submit((part.destination,), content, **fields)

    @classmethod
    def prepare(cls, part, config) -> Prepared:
        """``submit_pdu`` encoded, without building the Submit: every part comes here."""
        content, fields = _submit_fields(part, config)
        return CmppProtocol.prepared_body(codec.SUBMIT, codec.sp_submit_body(
            _version(config), part.destination, content, **fields))

    @staticmethod
    def encode_ahead(pdu, config) -> Prepared:
        return CmppProtocol.prepared(
            codec.encode(pdu, CmppProtocol.PLACEHOLDER_SEQUENCE, _version(config)))

    @staticmethod
    def incoming(pdu: codec.Deliver, smsc: str, now: Callable[[], datetime]):
        """A DELIVER as a Receipt (status report) or an MoMessage."""
        report = pdu.report
        if report is not None:
            return receipt(str(report.msg_id), report.stat, report.done_time, smsc,
                           number=report.dest_terminal_id)
        return mo_message(pdu.src_terminal_id, pdu.dest_id, pdu.content, pdu.msg_fmt,
                          pdu.tp_udhi, smsc, now())


def _submit_fields(part, config) -> tuple[bytes, dict]:
    """A part's content and the SUBMIT fields it sets (the others stay at their defaults)."""
    content, fmt = _text.for_carrier(part.short_message, part.data_coding, part.esm_class,
                                     config.gbk)
    total, number = _text.concatenation(part.short_message, part.esm_class)
    return content, dict(src_id=source_number(part, config),
                         msg_src=config.msg_src or config.system_id,
                         service_id=config.service_id, msg_fmt=fmt,
                         tp_udhi=1 if part.esm_class & _text.ESM_UDHI else 0,
                         pk_total=total, pk_number=number,
                         registered_delivery=1 if part.registered_delivery else 0,
                         msg_level=part.priority_flag, fee_user_type=2)


def _version(config) -> int:
    return codec.V20 if config.protocol == "cmpp2" else codec.V30
