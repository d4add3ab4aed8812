"""The project's own SMSC: Twisted, on our codec, with faults injected on purpose.

Faults: latency before each submit_sm_resp, bursts of ESME_RTHROTTLED, random
ESME_RTHROTTLED/ESME_RMSGQFUL and lost responses at given rates, link cuts every few
seconds, a disconnect once the client's window is full, the DLR sent before the
submit_sm_resp, hex message ids in DLRs (decimal in responses), refused binds.
It counts what it received and accepted per (destination, body), so tests can
assert that every message was accepted exactly once. As a real SMSC does, it
keeps a receipt that no receiver acknowledged and delivers it on the next bind.

In process: ``SmscFactory(clock, SimConfig(...))`` on a real port, or joined to
the client in memory by ``MemoryEndpoint`` (a test double, like treq's StubTreq). From the shell: ``python -m sandbox.smsc_sim --port P [--control-port C]``
with a small JSON control API on loopback (GET /stats, POST /config, /mo, /reset).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import datetime, UTC

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.masking import mask_mobile
from sms.smpp import codec
from sms.carrier import text as smstext

log = Logger(namespace="hotline.sandbox.smsc_sim")

_BIND_MODES = {"bind_transceiver": "trx", "bind_transmitter": "tx", "bind_receiver": "rx"}


@dataclass
class SimConfig:
    """What the simulated SMSC does; every field can be changed while it runs."""

    system_id: str = "hotline"
    password: str = "secret"
    latency: float = 0.0  # seconds before each submit_sm_resp
    dlr: bool = True  # send a DLR for each accepted submit_sm asking for one
    dlr_delay: float = 0.0  # seconds after the response (or before it, with dlr_before_resp)
    dlr_stat: str = "DELIVRD"
    dlr_tlvs: bool = False  # add receipted_message_id + message_state TLVs
    dlr_before_resp: bool = False
    hex_ids_in_dlr: bool = False  # the response says 4660, the DLR says 1234
    throttle_every: int = 0  # every Nth submit_sm starts a burst of refusals...
    throttle_burst: int = 0  # ...answered ESME_RTHROTTLED
    reject_binds: int = 0  # refuse this many binds (ESME_RBINDFAIL) before accepting
    disconnect_after: int = 0  # after this many accepted submits, hold the rest...
    disconnect_hold: int = 1  # ...and drop the connection when this many are held
    id_start: int = 1000
    throttle_rate: float = 0.0  # this fraction of submit_sm answered ESME_RTHROTTLED...
    queue_full_rate: float = 0.0  # ...and this fraction ESME_RMSGQFUL (random, seeded)
    unanswered_rate: float = 0.0  # this fraction accepted but never answered (a lost resp)
    cut_every: float = 0.0  # seconds between link cuts: accepted, unanswered, then closed
    cut_quiet: float = 0.05  # a cut first goes quiet this long (submits accepted, no resp)
    seed: int = 12329


class SmscSession(Protocol):
    """One ESME's connection to the simulated SMSC."""

    def __init__(self, factory: SmscFactory):
        self.factory = factory
        self.clock = factory.clock
        self.mode: str | None = None
        self._splitter = codec.FrameSplitter()
        self._seq = 0
        self._held: list[int] = []
        self._calls: list = []
        self._unacked: dict[int, tuple] = {}  # deliver_sm sequence -> (submit, message id)
        self.quiet = False  # a cut under way: accept, answer nothing

    def connectionMade(self) -> None:
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self.factory.sessions.append(self)
        self.factory.stats["connections"] += 1
        if self.factory.config.cut_every > 0:
            self._later(self.factory.config.cut_every, self._cut)

    def _cut(self) -> None:
        """Go quiet (what arrives is accepted, nothing is answered), then drop the link: every
        submit this cut leaves unanswered was accepted, so each resend is a duplicate."""
        self.quiet = True
        self.factory.stats["cuts"] += 1
        self._calls = [c for c in self._calls if c.active()]
        for call in self._calls:
            call.cancel()  # responses and receipts not yet written are lost with the link
        self._calls = []
        self.clock.callLater(self.factory.config.cut_quiet, self._close)

    def _close(self) -> None:
        if self.transport is not None and self.connected:
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:
        if self in self.factory.sessions:
            self.factory.sessions.remove(self)
        # Like a real SMSC, a receipt never acknowledged is kept for the next bind.
        self.factory.pending_receipts.extend(self._unacked.values())
        self._unacked = {}
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls = []

    def _later(self, delay: float, fn, *args) -> None:
        if delay <= 0:
            fn(*args)
            return
        self._calls = [c for c in self._calls if c.active()]
        self._calls.append(self.clock.callLater(delay, fn, *args))

    def _write(self, raw: bytes) -> None:
        if self.transport is not None and self.connected and not self.quiet:
            self.transport.write(raw)

    def next_sequence(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    @property
    def receives(self) -> bool:
        return self.mode in ("trx", "rx")

    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self._splitter.feed(data)
        except codec.FramingError as e:
            self.factory.stats["framing_errors"] += 1
            log.warn("smsc_sim: framing error, dropping the link: {e}", e=str(e))
            self.transport.abortConnection()
            return
        for raw in frames:
            try:
                pdu = codec.decode(raw)
            except codec.MalformedPdu as e:
                self.factory.stats["malformed"] += 1
                self._write(codec.generic_nack(e.sequence, e.status))
                continue
            self.handle(pdu)

    def handle(self, pdu) -> None:
        command, stats, cfg = pdu.command, self.factory.stats, self.factory.config
        if command in _BIND_MODES:
            ok = (_s(pdu.system_id) == cfg.system_id and _s(pdu.password) == cfg.password)
            if stats["binds_refused"] < cfg.reject_binds:
                ok = False
            if not ok:
                stats["binds_refused"] += 1
                self._write(codec.encode(command + "_resp", pdu.sequence,
                                         status=codec.ESME_RBINDFAIL, system_id="smsc_sim"))
                return
            self.mode = _BIND_MODES[command]
            stats["binds"] += 1
            self._write(codec.encode(command + "_resp", pdu.sequence, system_id="smsc_sim"))
            if self.receives and self.factory.pending_receipts:
                pending, self.factory.pending_receipts = self.factory.pending_receipts, []
                stats["dlrs_redelivered"] += len(pending)
                for submit, message_id in pending:
                    self._deliver_receipt(submit, message_id)
        elif command == "submit_sm":
            self._submit(pdu)
        elif command == "enquire_link":
            stats["enquire_links"] += 1
            self._write(codec.encode("enquire_link_resp", pdu.sequence))
        elif command == "unbind":
            stats["unbinds"] += 1
            self._write(codec.encode("unbind_resp", pdu.sequence))
            self.transport.loseConnection()
        elif command in ("deliver_sm_resp", "data_sm_resp"):
            key = "delivers_acked" if pdu.status == codec.ESME_ROK else "delivers_nacked"
            stats[key] += 1
            self._unacked.pop(pdu.sequence, None)
        elif command in ("enquire_link_resp", "unbind_resp", "generic_nack"):
            return
        else:
            self._write(codec.generic_nack(pdu.sequence, codec.ESME_RINVCMDID))

    def _submit(self, pdu) -> None:
        factory, stats, cfg = self.factory, self.factory.stats, self.factory.config
        stats["submits"] += 1
        if self.mode not in ("trx", "tx"):
            self._write(codec.encode("submit_sm_resp", pdu.sequence,
                                     status=codec.ESME_RINVBNDSTS))
            return
        if cfg.throttle_burst and cfg.throttle_every:
            if factory._burst_left == 0 and stats["submits"] % cfg.throttle_every == 0:
                factory._burst_left = cfg.throttle_burst
            if factory._burst_left > 0:
                factory._burst_left -= 1
                stats["throttled"] += 1
                self._later(cfg.latency, self._write, codec.encode(
                    "submit_sm_resp", pdu.sequence, status=codec.ESME_RTHROTTLED))
                return
        if cfg.throttle_rate or cfg.queue_full_rate:
            draw = factory.rng.random()
            status = codec.ESME_RTHROTTLED if draw < cfg.throttle_rate else \
                codec.ESME_RMSGQFUL if draw < cfg.throttle_rate + cfg.queue_full_rate else None
            if status is not None:
                stats["throttled" if status == codec.ESME_RTHROTTLED else "queue_full"] += 1
                self._later(cfg.latency, self._write, codec.encode(
                    "submit_sm_resp", pdu.sequence, status=status))
                return
        if cfg.disconnect_after and stats["accepted"] >= cfg.disconnect_after:
            self._held.append(pdu.sequence)
            stats["held"] += 1
            if len(self._held) >= cfg.disconnect_hold:
                stats["disconnects"] += 1
                factory.config.disconnect_after = 0  # one disconnect per setting
                self.transport.loseConnection()
            return
        message_id = factory.next_id()
        stats["accepted"] += 1
        body = pdu.short_message or b""
        factory.accepted[(_s(pdu.destination_addr), bytes(body))] += 1
        resp = codec.encode("submit_sm_resp", pdu.sequence, message_id=str(message_id))
        if self.quiet or (cfg.unanswered_rate and factory.rng.random() < cfg.unanswered_rate):
            stats["unanswered"] += 1
            return  # accepted, the response lost: the client's resend is a duplicate
        wants_dlr = cfg.dlr and (pdu.registered_delivery or 0) & 0x01
        if wants_dlr and cfg.dlr_before_resp:
            self._deliver_receipt(pdu, message_id)
            self._later(cfg.latency + cfg.dlr_delay, self._write, resp)
            return
        self._later(cfg.latency, self._write, resp)
        if wants_dlr:
            self._later(cfg.latency + cfg.dlr_delay, self._deliver_receipt, pdu, message_id)

    def _deliver_receipt(self, submit, message_id: int) -> None:
        cfg, factory = self.factory.config, self.factory
        target = self if self.receives and self.connected else factory.receiver()
        if target is None:
            factory.stats["dlrs_undeliverable"] += 1
            factory.pending_receipts.append((submit, message_id))  # for the next bind
            return
        dlr_id = f"{message_id:X}" if cfg.hex_ids_in_dlr else str(message_id)
        now = datetime.fromtimestamp(self.clock.seconds(), UTC).strftime("%y%m%d%H%M")
        body = (f"id:{dlr_id} sub:001 dlvrd:{'001' if cfg.dlr_stat == 'DELIVRD' else '000'} "
                f"submit date:{now} done date:{now} stat:{cfg.dlr_stat} err:000 text:")
        extra = {}
        if cfg.dlr_tlvs:
            states = {v: k for k, v in codec.MESSAGE_STATES.items()}
            extra = dict(receipted_message_id=dlr_id,
                         message_state=states.get(cfg.dlr_stat, 7))
        sequence = target.next_sequence()
        raw = codec.encode("deliver_sm", sequence, esm_class=0x04,
                           source_addr=_s(submit.destination_addr),
                           destination_addr=_s(submit.source_addr), data_coding=0,
                           short_message=body.encode("ascii"), **extra)
        factory.stats["dlrs_sent"] += 1
        target._unacked[sequence] = (submit, message_id)
        target._write(raw)

    def send_mo(self, source: str, destination: str, text: str) -> None:
        encoded = smstext.encode(text, reference=0)
        for part in encoded.parts:
            self._write(codec.encode("deliver_sm", self.next_sequence(), esm_class=encoded.esm_class,
                                     source_addr=source, destination_addr=destination,
                                     data_coding=encoded.data_coding, short_message=part))
        self.factory.stats["mo_sent"] += 1


class SmscFactory(Factory):
    """The simulated SMSC: configuration, sessions and counters shared by all connections."""

    def __init__(self, clock: IReactorTime, config: SimConfig | None = None):
        self.clock = clock
        self.config = config or SimConfig()
        self.sessions: list[SmscSession] = []
        self.reset()

    def reset(self) -> None:
        self.stats: Counter = Counter()
        self.accepted: Counter = Counter()  # (destination, body) -> times accepted
        self.pending_receipts: list[tuple] = []  # receipts no bound receiver has acknowledged
        self._next_id = self.config.id_start
        self._burst_left = 0
        self.rng = random.Random(self.config.seed)

    def buildProtocol(self, addr) -> SmscSession:
        return SmscSession(self)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def receiver(self) -> SmscSession | None:
        """A bound session able to take deliver_sm (transceiver or receiver)."""
        for session in self.sessions:
            if session.receives:
                return session
        return None

    def configure(self, **changes) -> None:
        known = {f.name for f in fields(SimConfig)}
        for key, value in changes.items():
            if key not in known:
                raise KeyError(f"unknown smsc_sim setting {key!r}")
            setattr(self.config, key, value)

    def inject_mo(self, source: str, destination: str, text: str) -> bool:
        session = self.receiver()
        if session is None:
            return False
        log.info("smsc_sim: MO from {source}", source=mask_mobile(source))
        session.send_mo(source, destination, text)
        return True

    def snapshot(self) -> dict:
        duplicates = sum(n - 1 for n in self.accepted.values() if n > 1)
        return dict(self.stats, bound_sessions=sum(1 for s in self.sessions if s.mode),
                    distinct_accepted=len(self.accepted), duplicates=duplicates,
                    config=asdict(self.config))


class MemoryEndpoint:
    """A client endpoint joined to an in-process SmscFactory over iosim, for Clock-driven tests.

    Bytes move only when the test calls ``flush()``; ``refuse`` makes the next
    connection attempts fail like a closed port.
    """

    def __init__(self, smsc: SmscFactory):
        self.smsc = smsc
        self.pumps: list = []
        self.refuse = False
        self.attempts = 0

    def connect(self, factory):
        from twisted.internet.defer import fail, succeed
        from twisted.internet.error import ConnectionRefusedError
        from twisted.test import iosim

        self.attempts += 1
        if self.refuse:
            return fail(ConnectionRefusedError("smsc_sim memory endpoint refusing"))
        client = factory.buildProtocol(None)
        server = self.smsc.buildProtocol(None)
        self.pumps.append(iosim.connect(server, iosim.makeFakeServer(server), client,
                                        iosim.makeFakeClient(client), greet=True))
        return succeed(client)

    def flush(self) -> None:
        for pump in self.pumps:
            pump.flush()
        self.pumps = [p for p in self.pumps
                      if not (p.clientIO.disconnected and p.serverIO.disconnected)]


def _s(value) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


# ---- the shell entry point --------------------------------------------------

def _control_site(factory: SmscFactory):
    from twisted.web import resource, server

    class Control(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(factory.snapshot()).encode()

        def render_POST(self, request):
            request.setHeader(b"content-type", b"application/json")
            path = request.path.decode()
            try:
                body = json.loads(request.content.read() or b"{}")
                if path == "/config":
                    factory.configure(**body)
                    result = {"ok": True}
                elif path == "/mo":
                    result = {"ok": factory.inject_mo(body["source"], body["destination"],
                                                      body["text"])}
                elif path == "/reset":
                    factory.reset()
                    result = {"ok": True}
                else:
                    request.setResponseCode(404)
                    result = {"error": "unknown path"}
            except (KeyError, ValueError, TypeError) as e:
                request.setResponseCode(400)
                result = {"error": str(e)}
            return json.dumps(result).encode()

    return server.Site(Control())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.smsc_sim",
                                     description="fault-injecting SMPP SMSC for tests and demos")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, default=0,
                        help="JSON control API on the same host (0 = none)")
    for f in fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"float": float, "int": int}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default)
    args = parser.parse_args(argv)
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    config = SimConfig(**{f.name: getattr(args, f.name) for f in fields(SimConfig)})
    factory = SmscFactory(reactor, config)
    reactor.listenTCP(args.port, factory, interface=args.host)
    if args.control_port:
        reactor.listenTCP(args.control_port, _control_site(factory), interface=args.host)
    log.info("smsc_sim listening on {host}:{port}", host=args.host, port=args.port)
    reactor.run()


if __name__ == "__main__":
    main()
