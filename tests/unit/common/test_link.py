"""The reconnecting link base: backoff on the clock, the state table, observers, and the
ClientService gap (a connection that closes after its login failed) handled without errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from common.link import (CLOSING, DOWN, JITTER, PARKED, PREPARING, UP, IllegalTransition,
                         Link, backoff)


class Refused(Exception):
    """The toy server's typed refusal."""


class Toy(Protocol):
    """Logs in with ``LOGIN``; the server answers ``OK`` or ``NO``; ``BYE`` on the way out."""

    def __init__(self):
        self.login: Deferred | None = None
        self.lost: list = []

    def dataReceived(self, data: bytes) -> None:
        d, self.login = self.login, None
        if d is not None:
            d.callback(None) if data == b"OK" else d.errback(Refused("wrong secret"))

    def connectionLost(self, reason=None) -> None:
        self.lost.append(reason)
        d, self.login = self.login, None
        if d is not None:
            d.errback(Refused("connection lost during login"))


class ToyLink(Link):
    names = {DOWN: "down", PREPARING: "joining", UP: "joined", CLOSING: "leaving",
             PARKED: "parked"}
    label = "toy link"
    errors = (Refused,)

    def __init__(self, endpoint, clock, log_in=None, **kw):
        super().__init__("toy", endpoint, clock, min_delay=1.0, max_delay=8.0,
                         jitter=lambda: 0.0, **kw)
        self._log_in = log_in
        self.goodbyes = 0
        self.built: list[Toy] = []

    def build_protocol(self) -> Toy:
        self.built.append(Toy())
        return self.built[-1]

    def log_in(self, protocol: Toy) -> Deferred:
        if self._log_in is not None:
            return self._log_in(protocol)
        protocol.transport.write(b"LOGIN")
        protocol.login = Deferred()
        return protocol.login

    def log_out(self, protocol: Toy) -> Deferred:
        self.goodbyes += 1
        protocol.transport.write(b"BYE")
        return succeed(None)


class Endpoint:
    """Connects at once over a StringTransport, or refuses like a closed port.

    ``last()`` is what the transport talks to: bytes and the connection's end go there.
    """

    def __init__(self):
        self.refuse = False
        self.attempts: list[float] = []
        self.connections: list[tuple[Protocol, StringTransport]] = []
        self.clock: Clock | None = None

    def connect(self, factory):
        self.attempts.append(self.clock.seconds())
        if self.refuse:
            return fail(ConnectionRefusedError())
        proto = factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        self.connections.append((proto, transport))
        return succeed(proto)

    def last(self) -> tuple[Protocol, StringTransport]:  # (wire, transport)
        return self.connections[-1]


def make(**kw):
    clock, endpoint = Clock(), Endpoint()
    endpoint.clock = clock
    link = ToyLink(endpoint, clock, **kw)
    seen: list[tuple[str, str]] = []
    link.observe(lambda _link, old, new: seen.append((old, new)))
    return clock, endpoint, link, seen


def logged_in(link, endpoint):
    """Start the link and let its login succeed; its protocol and transport."""
    link.startService()
    proto, transport = endpoint.last()
    proto.dataReceived(b"OK")
    return proto, transport


def test_backoff_starts_at_the_minimum_and_doubles_to_the_maximum():
    """Retry n waits min * 2**(n-1), capped at max, stretched by at most JITTER of itself."""
    policy = backoff(1.0, 8.0, jitter=lambda: 0.0)
    assert [policy(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff(1.0, 8.0, jitter=lambda: 1.0)(1) == pytest.approx(1.0 + JITTER)
    assert backoff(0.1, 60.0, jitter=lambda: 0.0)(10_000) == 60.0


def test_first_reconnect_happens_at_the_minimum_delay():
    """Issue 11: after a cut the link tried again 2.0-2.8 s later with reconnect_min = 1;
    now the first attempt comes after 1 s, then 2 s, 4 s (refused connects)."""
    clock, endpoint, link, _ = make()
    proto, _t = logged_in(link, endpoint)
    endpoint.refuse = True
    proto.connectionLost(Failure(ConnectionLost()))
    for wait in (1.0, 2.0, 4.0):
        clock.advance(wait - 0.001)
        before = len(endpoint.attempts)
        clock.advance(0.001)
        assert len(endpoint.attempts) == before + 1
    assert endpoint.attempts == pytest.approx([0.0, 1.0, 3.0, 7.0])


def test_login_moves_through_the_table_and_observers_see_it_in_the_protocols_words():
    """down -> joining -> joined on login; the protocol is offered only when joined."""
    _clock, endpoint, link, seen = make()
    link.startService()
    proto, t = endpoint.last()
    assert t.value() == b"LOGIN" and link.state == "joining" and link.protocol is None
    proto.dataReceived(b"OK")
    assert seen == [("down", "joining"), ("joining", "joined")]
    assert link.is_up and link.protocol is link.built[0] and link.snapshot().ups == 1


def test_illegal_move_raises():
    """The table refuses a jump it does not allow, naming it in the protocol's words."""
    _clock, _endpoint, link, _ = make()
    with pytest.raises(IllegalTransition, match="down -> joined"):
        link._move(UP)


def test_a_failing_observer_is_logged_and_the_others_still_run():
    """One broken observer does not stop the link or the observers after it."""
    _clock, endpoint, link, seen = make()
    link.observe(lambda *_: 1 / 0)
    after = []
    link.observe(lambda _link, _old, new: after.append(new))
    with capturedLogs() as events:
        link.startService()
    assert after == ["joining"] and seen == [("down", "joining")]
    assert any(e.get("log_failure") is not None for e in events)


def test_refused_login_then_close_reconnects_without_error():
    """The ClientService gap: the refused connection closes after prepareConnection failed;
    nothing raises, the attempt counts as failed, the retry comes after min_delay."""
    clock, endpoint, link, seen = make()
    link.startService()
    proto, t = endpoint.last()
    proto.dataReceived(b"NO")
    assert t.disconnecting and link.state == "down"
    assert link.last_error == "login failed: wrong secret" and link.failures == 1
    proto.connectionLost(Failure(ConnectionDone()))  # the server closes the refused connection
    assert len(link.built[0].lost) == 1  # the protocol still hears its own end
    clock.advance(1.0)
    proto2, _t2 = endpoint.last()
    assert proto2 is not proto
    proto2.dataReceived(b"OK")
    assert link.is_up and link.snapshot().failed_attempts == 0 and link.last_error is None
    assert seen == [("down", "joining"), ("joining", "down"), ("down", "joining"),
                    ("joining", "joined")]


def test_connection_lost_during_login_counts_as_a_failed_attempt():
    """A connection that drops while the login is pending is a failed attempt, retried."""
    clock, endpoint, link, _ = make()
    link.startService()
    proto, _t = endpoint.last()
    proto.connectionLost(Failure(ConnectionLost()))
    assert link.state == "down" and link.failures == 1
    clock.advance(1.0)
    endpoint.last()[0].dataReceived(b"OK")
    assert link.is_up


def test_login_waiting_on_something_else_ends_with_its_connection():
    """A log_in that does not wait on the connection is cancelled when the connection drops,
    and counts as a failed attempt instead of holding ClientService forever."""
    hanging = []

    def log_in(_protocol):
        hanging.append(Deferred())
        return hanging[-1]

    clock, endpoint, link, _ = make(log_in=log_in)
    link.startService()
    proto, _t = endpoint.last()
    proto.connectionLost(Failure(ConnectionLost()))
    assert link.state == "down" and link.last_error == "login failed: connection closed"
    clock.advance(1.0)
    assert len(endpoint.connections) == 2


def test_unexpected_login_error_is_logged_and_retried():
    """A login that fails with something other than the protocol's typed errors is a bug:
    logged with its traceback, and still retried like a refusal."""
    clock, endpoint, link, _ = make(log_in=lambda _p: fail(ZeroDivisionError("bug")))
    with capturedLogs() as events:
        link.startService()
    assert any(e.get("log_failure") is not None and e["log_failure"].check(ZeroDivisionError)
               for e in events)
    assert link.state == "down" and endpoint.last()[1].disconnecting
    clock.advance(1.0)
    assert len(endpoint.connections) == 2


def test_stop_when_up_logs_out_then_closes_without_reconnecting():
    """Stop: log out, close, down once the connection is gone; no retry afterwards."""
    clock, endpoint, link, seen = make()
    link.startService()
    proto, t = endpoint.last()
    proto.dataReceived(b"OK")
    stopped = []
    link.stopService().addCallback(stopped.append)
    assert link.goodbyes == 1 and t.value().endswith(b"BYE") and t.disconnecting
    assert link.state == "leaving"
    proto.connectionLost(Failure(ConnectionDone()))
    assert stopped == [None] and link.state == "down"
    assert seen[-2:] == [("joined", "leaving"), ("leaving", "down")]
    clock.advance(60)
    assert len(endpoint.attempts) == 1


def test_stop_during_login_closes_the_connection_and_stops():
    """Stopping while the login is pending closes that connection, counts no failure, and
    its later close raises nothing."""
    clock, endpoint, link, _ = make()
    link.startService()
    proto, t = endpoint.last()
    stopped = []
    link.stopService().addCallback(stopped.append)
    assert stopped == [None] and t.disconnecting and link.state == "down"
    assert link.failures == 0
    proto.connectionLost(Failure(ConnectionDone()))
    clock.advance(60)
    assert len(endpoint.attempts) == 1


def test_loss_when_up_goes_down_with_the_reason_and_reconnects():
    """A logged-in connection that drops: down with the reason, retried after min_delay."""
    clock, endpoint, link, _ = make()
    proto, _t = logged_in(link, endpoint)
    proto.connectionLost(Failure(ConnectionLost("peer went away")))
    assert link.state == "down" and link.protocol is None and "peer went away" in link.last_error
    clock.advance(1.0)
    endpoint.last()[0].dataReceived(b"OK")
    assert link.is_up and link.snapshot().reconnects == 1


def test_when_up_fires_with_the_logged_in_protocol():
    """when_up gives the application's protocol, not a wrapper, once logged in."""
    _clock, endpoint, link, _ = make()
    got = []
    link.startService()
    link.when_up().addCallback(got.append)
    assert got == []
    proto, _t = endpoint.last()
    proto.dataReceived(b"OK")
    assert got == [link.built[0]]


def test_parked_link_logs_out_and_reconnects_only_when_demanded():
    """park: log out, close, ``parked`` once the connection is gone (no error, no retry
    however long); demand: ClientService connects again and the link logs in."""
    clock, endpoint, link, seen = make()
    link.startService()
    proto, t = endpoint.last()
    proto.dataReceived(b"OK")
    link.park()
    assert link.goodbyes == 1 and t.value().endswith(b"BYE") and link.state == "leaving"
    assert link.parked and not link.is_up
    proto.connectionLost(Failure(ConnectionDone()))
    assert seen[-2:] == [("joined", "leaving"), ("leaving", "parked")]
    assert link.last_error is None
    clock.advance(3600)
    assert len(endpoint.attempts) == 1
    link.demand()
    assert len(endpoint.attempts) == 2 and link.state == "joining" and not link.parked
    endpoint.last()[0].dataReceived(b"OK")
    assert link.is_up and link.ups == 2 and link.failures == 0


def test_demand_while_parking_reconnects_as_soon_as_closed():
    """A demand while the goodbye is under way is kept: parked, then connecting at once."""
    clock, endpoint, link, seen = make()
    proto, _t = logged_in(link, endpoint)
    link.park(say_goodbye=False)
    assert link.goodbyes == 0
    link.demand()
    assert len(endpoint.attempts) == 1
    proto.connectionLost(Failure(ConnectionDone()))
    assert ("leaving", "parked") in seen and ("parked", "down") in seen
    assert len(endpoint.attempts) == 2


def test_stop_while_parked_stops_and_a_demand_then_does_nothing():
    """A parked link stops at once; nothing connects it afterwards."""
    clock, endpoint, link, _ = make()
    proto, _t = logged_in(link, endpoint)
    link.park()
    proto.connectionLost(Failure(ConnectionDone()))
    stopped = []
    link.stopService().addCallback(stopped.append)
    assert stopped == [None]
    link.demand()
    clock.advance(60)
    assert len(endpoint.attempts) == 1 and link.state == "parked"


def test_no_module_patches_client_service_privates():
    """The gap is closed in common/link.py alone: no product module touches ClientService's
    private ``_lostNotification`` (as sms/binds.py once did)."""
    root = Path(__file__).resolve().parents[3]
    offenders = [str(p.relative_to(root)) for package in ("common", "ivr", "sms", "core_client")
                 for p in (root / package).rglob("*.py")
                 if "_lostNotification" in p.read_text(encoding="utf-8")]
    assert offenders == []
