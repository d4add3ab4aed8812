"""The door's SMPP server, for client systems that already speak SMPP.

Layers: the codec is sms.smpp.codec; ``DoorSmppProtocol`` reuses the ESME protocol's
framing, sequence-matched pending table (deliver_sm out, deliver_sm_resp in), enquire_link
and generic_nack for garbage, and adds the SMSC side: binds checked against the client's
system id, its SMPP password (``$<secret_env>_SMPP``, at most 8 characters) and address
allowlist; submit_sm answered only after the message is committed in the outbox (one
transaction for all submits of a reactor turn); a window per bind (ESME_RMSGQFUL beyond)
and the client's messages per second (ESME_RTHROTTLED beyond). ``DoorSmppServer`` pushes the
client's receipts and MO (door_event rows) as deliver_sm to its receiver binds, and again
on the next bind for any not acknowledged.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from sms.carrier.text import decode, split_udh
from sms.door.accept import ItemResult, SmppSubmit
from sms.door.callbacks import backoff, claim_due, settle
from sms.door.clients import Client
from sms.outbox.group_commit import GroupCommit
from sms.smpp import codec
from sms.smpp.binds import TokenBucket
from sms.smpp.codec import (ESME_RALYBND, ESME_RBINDFAIL, ESME_RINVBNDSTS, ESME_RINVDSTADR,
                            ESME_RMSGQFUL, ESME_RSYSERR, ESME_RTHROTTLED)
from sms.smpp.protocol import SmppError, SmppProtocol

log = Logger(namespace="hotline.sms.door.smpp")
ESME_RSUBMITFAIL = 0x45
BIND_MODES = {"bind_transmitter": "tx", "bind_receiver": "rx", "bind_transceiver": "trx"}
REASON_STATUS = {"invalid_number": ESME_RINVDSTADR, "rate_limited": ESME_RTHROTTLED}
DLR_STAT = {"delivered": ("DELIVRD", 2), "failed": ("UNDELIV", 5), "expired": ("EXPIRED", 3),
            "cancelled": ("REJECTD", 8)}


def receipt_fields(event: dict, own_addr: str) -> dict:
    """deliver_sm fields of a receipt: the DLR text and the receipted_message_id TLVs."""
    stat, state = DLR_STAT.get(event["state"], ("UNKNOWN", 7))
    done = dt.datetime.fromtimestamp(event.get("done_at") or 0, dt.UTC)
    stamp = done.strftime("%y%m%d%H%M")
    text = (f"id:{event['message_id']} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:{stamp} done date:{stamp} stat:{stat} "
            f"err:{'000' if stat == 'DELIVRD' else '001'} text:")
    return dict(source_addr=event.get("destination") or "", destination_addr=own_addr,
                esm_class=0x04, data_coding=0, short_message=text.encode(),
                receipted_message_id=str(event["message_id"]), message_state=state)


def deliver_fields(event: dict, own_addr: str) -> dict:
    """deliver_sm fields for an event: a receipt, or an MO (UCS2 text, as the handset sent)."""
    if event["type"] == "mo":
        return dict(source_addr=event["source"], destination_addr=event["destination"],
                    esm_class=0, data_coding=8, short_message=event["text"].encode("utf-16-be"))
    return receipt_fields(event, own_addr)


class DoorSmppProtocol(SmppProtocol):
    """One client connection, SMSC side: open -> bound (tx / rx / trx) -> closed."""

    transport: ITransport  # requests are read, and answered, only on a made connection

    def __init__(self, server: DoorSmppServer, peer_host: str):
        super().__init__(server.clock, response_timeout=server.response_timeout,
                         enquire_link=server.enquire_link, name="door-smpp")
        self.server, self.peer_host = server, peer_host
        self.client: Client | None = None
        self.mode: str | None = None
        self.inflight = 0
        self._read: list[tuple[int, SmppSubmit]] | None = None  # this read's submits

    def dataReceived(self, data: bytes) -> None:
        """The submits of one read are accepted together and answered in one write."""
        self._read = []
        try:
            super().dataReceived(data)
        finally:
            read, self._read = self._read, None
            if read:
                self._accept(read)

    def _accept(self, read: list[tuple[int, SmppSubmit]]) -> None:
        assert self.client is not None  # submits are read only once bound
        d = self.server.accept(self.client, [submit for _, submit in read])
        d.addBoth(self._answer, [seq for seq, _ in read])

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        self.server.unbound(self)

    @property
    def receives(self) -> bool:
        return self.mode in ("rx", "trx")

    def _request_received(self, pdu) -> None:
        command = pdu.command
        if command in BIND_MODES:
            self._bind(pdu, BIND_MODES[command])
        elif command == "submit_sm":
            self._submit(pdu)
        elif command == "unbind":
            self.transport.write(codec.encode("unbind_resp", pdu.sequence))
            self.transport.loseConnection()
        elif command == "enquire_link":
            self.transport.write(codec.encode("enquire_link_resp", pdu.sequence))
        else:
            self.transport.write(codec.generic_nack(pdu.sequence, codec.ESME_RINVCMDID))

    def _bind(self, pdu, mode: str) -> None:
        response = pdu.command + "_resp"
        if self.mode is not None:
            self.transport.write(codec.encode(response, pdu.sequence, status=ESME_RALYBND))
            return
        self.mode = "binding"  # a second bind while this one is checked is ALYBND
        d = self.server.check_bind(codec.as_text(pdu.system_id), codec.as_text(pdu.password),
                                   self.peer_host)
        d.addCallback(self._bind_checked, pdu, response, mode)
        d.addErrback(self._bind_crashed, pdu, response)

    def _bind_crashed(self, failure, pdu, response) -> None:
        log.failure("door SMPP bind check failed", failure)
        self.mode = None
        if self.connected:
            self.transport.write(codec.encode(response, pdu.sequence, status=ESME_RBINDFAIL))

    def _bind_checked(self, client, pdu, response: str, mode: str) -> None:
        if not self.connected:
            return
        if client is None:
            self.mode = None
            self.transport.write(codec.encode(response, pdu.sequence, status=ESME_RBINDFAIL))
            log.info("door SMPP bind refused from {peer}", peer=self.peer_host)
            return
        self.client, self.mode = client, mode
        self.transport.write(codec.encode(response, pdu.sequence, system_id="hotline"))
        self.server.bound(self, client)

    def _submit(self, pdu) -> None:
        seq = pdu.sequence
        if self.mode not in ("tx", "trx"):
            self.transport.write(codec.encode("submit_sm_resp", seq, status=ESME_RINVBNDSTS))
            return
        if self.inflight >= self.server.window:
            self.transport.write(codec.encode("submit_sm_resp", seq, status=ESME_RMSGQFUL))
            return
        if self.server.bucket(self.client).take() > 0:  # seconds until the next token
            self.transport.write(codec.encode("submit_sm_resp", seq, status=ESME_RTHROTTLED))
            return
        body = pdu.short_message or b""
        if not body and getattr(pdu, "message_payload", None):
            body = pdu.message_payload
        esm_class, coding = pdu.esm_class or 0, pdu.data_coding or 0
        _udh, payload = split_udh(body, esm_class)
        try:
            text = decode(payload, coding)
        except (UnicodeDecodeError, ValueError):
            text = ""
        source = codec.as_text(pdu.source_addr)
        base = self.server.source_base
        ext = source[len(base):] if source.startswith(base) else ""
        submit = SmppSubmit(codec.as_text(pdu.destination_addr), ext, bytes(body), coding,
                            esm_class, text)
        self.inflight += 1
        if self._read is None:  # not from a read (a direct call): accepted on its own
            self._accept([(seq, submit)])
        else:
            self._read.append((seq, submit))

    def _answer(self, results, seqs: list[int]) -> None:
        self.inflight -= len(seqs)
        if not self.connected:
            return  # committed but unanswered: the client resubmits; counted as duplicate text
        if isinstance(results, Failure):
            log.failure("door SMPP submits failed", results)
            self.transport.write(b"".join(codec.encode("submit_sm_resp", seq,
                                                       status=ESME_RSYSERR) for seq in seqs))
            return
        self.transport.write(b"".join(_submit_resp(seq, result)
                                      for seq, result in zip(seqs, results, strict=True)))


def _submit_resp(seq: int, result: ItemResult) -> bytes:
    if result.status in ("accepted", "duplicate"):
        return codec.encode("submit_sm_resp", seq, message_id=str(result.message_id))
    status = REASON_STATUS.get(result.reason or "", ESME_RSUBMITFAIL)
    return codec.encode("submit_sm_resp", seq, status=status)


class _Factory(Factory):
    def __init__(self, server: DoorSmppServer):
        self.server = server

    def buildProtocol(self, addr):
        return DoorSmppProtocol(self.server, getattr(addr, "host", ""))


class DoorSmppServer(MultiService):
    """The listening port, the bound sessions per client, and the deliver_sm pump."""

    name: str | None = "door-smpp"  # type: ignore[assignment]

    def __init__(self, door_accept, directory, db, clock, config, environ, *,
                 response_timeout: float = 10.0, enquire_link: float = 30.0):
        super().__init__()
        self.door_accept, self.directory, self.db, self.clock = door_accept, directory, db, clock
        self.config, self.environ = config, environ
        self.window, self.source_base = config.smpp_window, config.source_base
        self.response_timeout, self.enquire_link = response_timeout, enquire_link
        self.sessions: dict[str, list[DoorSmppProtocol]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._pumping: set[str] = set()
        outbox = door_accept.outbox
        self._submits = GroupCommit(db, self._accept_batch, outbox.accept_lock, max_batch=500,
                                    turns=clock)
        self._loop = LoopingCall(self.pump_all)
        self._loop.clock = clock

    def listen(self, reactor, endpoint: str) -> None:
        StreamServerEndpointService(serverFromString(reactor, endpoint),
                                    _Factory(self)).setServiceParent(self)

    def factory(self) -> Factory:
        return _Factory(self)

    def startService(self) -> None:
        super().startService()
        self._loop.start(1.0, now=False).addErrback(
            lambda f: log.failure("door SMPP pump stopped", f))

    def stopService(self):
        if self._loop.running:
            self._loop.stop()
        return super().stopService()

    # -- binds --------------------------------------------------------------------
    def check_bind(self, system_id: str, password: str, host: str) -> Deferred:
        """Fires with the client these credentials and this address bind as, or None."""
        return Deferred.fromCoroutine(self._check_bind(system_id, password, host))

    async def _check_bind(self, system_id: str, password: str, host: str):
        directory = await self.directory.fresh()
        client = directory.by_system_id.get(system_id)
        if client is None or not client.enabled or not client.allows_ip(host):
            return None
        expected = self.environ.get(f"{client.secret_env}_SMPP", "")
        if not expected or not hmac.compare_digest(password.encode(), expected.encode()):
            return None
        return client

    def bound(self, session: DoorSmppProtocol, client: Client) -> None:
        self.sessions.setdefault(client.name, []).append(session)
        if session.receives:
            self.pump(client.name)

    def unbound(self, session: DoorSmppProtocol) -> None:
        if session.client is not None:
            live = self.sessions.get(session.client.name, [])
            if session in live:
                live.remove(session)

    def bucket(self, client) -> TokenBucket:
        """The client's messages per second, shared by its binds, bursts of a second's worth."""
        b = self._buckets.get(client.name)
        if b is None:
            b = self._buckets[client.name] = TokenBucket(client.rate_per_second, self.clock,
                                                         burst_seconds=1.0)
        elif b.rate != client.rate_per_second:
            b.set_rate(client.rate_per_second)
        return b

    # -- submits ------------------------------------------------------------------
    def accept(self, client: Client, submits: list[SmppSubmit]) -> Deferred:
        """Fires with one ItemResult per submit once they are committed."""
        d = self._submits.add((client, submits))
        d.addCallback(self._woken)
        return d

    def _woken(self, results: list[ItemResult]) -> list[ItemResult]:
        if any(r.status == "accepted" for r in results):
            self.door_accept.outbox.notify_accepted()
        return results

    def _accept_batch(self, session, items: list) -> list:
        """One accept per client over the submits of every read in the transaction; each
        read gets its own results back."""
        now = self.clock.seconds()
        by_client: dict[str, list[int]] = {}
        for i, (client, _submits) in enumerate(items):
            by_client.setdefault(client.name, []).append(i)
        results: list = [None] * len(items)
        for indexes in by_client.values():
            client = items[indexes[0]][0]
            answers = iter(self.door_accept.accept_sync(
                session, client, [s for i in indexes for s in items[i][1]], now, "smpp"))
            for i in indexes:
                results[i] = [next(answers) for _ in items[i][1]]
        return results

    def _write(self, fn, *args) -> Deferred:
        """SQLite has one writer: the door's writes take the outbox's lock, as its own do."""
        if not self.db.is_sqlite:
            return self.db.run(fn, *args)
        return self.door_accept.outbox.lock.run(self.db.run, fn, *args)

    # -- deliver_sm pump ------------------------------------------------------------
    def pump_all(self) -> None:
        for name, live in list(self.sessions.items()):
            if any(s.receives for s in live):
                self.pump(name)

    def pump(self, client: str) -> None:
        if client in self._pumping:
            return
        self._pumping.add(client)
        d = Deferred.fromCoroutine(self._pump(client))
        d.addErrback(lambda f: log.failure("door SMPP pump for {client} failed", f,
                                           client=client))
        d.addBoth(lambda _: self._pumping.discard(client))

    async def _pump(self, client: str) -> None:
        while True:
            receivers = [s for s in self.sessions.get(client, []) if s.receives]
            if not receivers:
                return
            now = self.clock.seconds()
            rows = await self._write(claim_due, "smpp", now, 2 * self.response_timeout + 1,
                                     self.window, client)
            if not rows:
                return
            session = receivers[0]
            own = self.source_base
            sent = [session.request("deliver_sm", **deliver_fields(json.loads(r.payload), own))
                    for r in rows]
            acked, failed = [], []
            for r, d in zip(rows, sent, strict=True):
                try:
                    await d
                    acked.append(r.id)
                except SmppError as e:
                    attempts = r.attempts + 1
                    failed.append((r.id, attempts, now + backoff(self.config, attempts),
                                   type(e).__name__, False))
            await self._write(settle, acked, failed, self.clock.seconds())
            if failed:
                return
