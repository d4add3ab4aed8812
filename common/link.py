"""One reconnecting client link: the AMI link, each SMPP bind, and the CMPP, SMGP and SGIP links.

A ``Link`` keeps one connection to a server alive with Twisted's ``ClientService``
and jittered backoff (``backoff``). A subclass says how to build its protocol
(``build_protocol``), how to log in on a fresh connection (``log_in``: AMI Login,
SMPP bind, CMPP CONNECT) and how to leave (``log_out``); the login runs in
``prepareConnection``, so a refused login counts as a failed connection and is
retried like a refused TCP connect.

The link's life is an explicit machine over five roles, each named in the
protocol's own words by the subclass (``names``: SMPP says ``binding``/``bound``)::

    down -> preparing -> up -> closing -> down
              |           |        |
              +-> down    +-> down +-> parked -> down

``parked`` is a link closed by design rather than lost (SGIP has no keep-alive: an
idle side unbinds, ``park``): ClientService is stopped, so nothing reconnects
until something needs the link (``demand``), and then the same ClientService
and backoff bring it back.

A move the table does not allow raises ``IllegalTransition``. Observers follow
every move through one API, ``observe``.

``ClientService`` has no transition for the loss of a connection it already wrote
off: one whose ``prepareConnection`` failed, or that drops while it runs (automat
raises ``NoTransition`` from ``connectionLost``). The gap is closed here, once,
without touching Twisted's private attributes: the endpoint handed to
``ClientService`` puts a ``_Guard`` between the transport and ClientService's own
protocol wrapper, and the guard reports a loss to ClientService only for a
connection that was accepted; a written-off one ends with its protocol alone.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from collections.abc import Callable
from typing import Generic, Self, TypeVar, cast

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import (IProtocol, IProtocolFactory, IReactorTime,
                                         IStreamClientEndpoint)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

DOWN, PREPARING, UP, CLOSING, PARKED = "down", "preparing", "up", "closing", "parked"
TRANSITIONS = {
    DOWN: {PREPARING},
    PREPARING: {UP, DOWN},
    UP: {CLOSING, DOWN},
    CLOSING: {DOWN, PARKED},
    PARKED: {DOWN},
}
JITTER = 0.1  # at most this fraction is added to a delay: links cut together return apart

P = TypeVar("P", bound=Protocol)  # the protocol a link speaks (AmiProtocol, SmppProtocol...)


class IllegalTransition(RuntimeError):
    """A state change the link's table does not allow: a bug, never a server's answer."""


class LinkClosed(Exception):
    """The connection closed before the login finished."""


def backoff(min_delay: float, max_delay: float, factor: float = 2.0,
            jitter: Callable[[], float] = random.random) -> Callable[[int], float]:
    """A ``ClientService`` retry policy: the first retry after ``min_delay``, then doubling
    up to ``max_delay``, each delay stretched by up to ``JITTER`` of itself at random.

    Not Twisted's ``backoffPolicy``: ClientService counts the first failure as attempt 1,
    for which that policy already waits ``initialDelay * factor``, and its jitter adds up
    to a whole second whatever the delay, so ``reconnect_min = 1`` waited 2 to 3 s.
    """
    def policy(attempt: int) -> float:
        delay = min(max_delay, min_delay * factor ** min(attempt - 1, 64))
        return delay * (1.0 + JITTER * jitter())

    return policy


@dataclass(frozen=True)
class LinkState:
    """A link's state at one moment, for status pages and tests."""

    state: str
    since: float
    ups: int  # successful logins
    failures: int  # failed logins (refused, or the connection closed during the login)
    failed_attempts: int  # failed logins since the link was last up
    last_error: str | None

    @property
    def reconnects(self) -> int:
        return max(0, self.ups - 1)


class Link(Service, Generic[P]):
    """One client connection kept logged in; subclasses supply the protocol and its login."""

    names: dict[str, str] = {role: role for role in TRANSITIONS}  # roles in the protocol's words
    label = "link"  # how log lines name the link
    login_verb = "login"  # how errors name the log_in step
    errors: tuple[type[Exception], ...] = ()  # the protocol's typed failures, expected at login
    log = Logger()  # namespaced by the subclass (Logger as a descriptor)
    # Always set (setName in __init__). Twisted's Service leaves ``name = None`` unannotated,
    # so its stubs say None where IService says "str or None".
    name: str  # type: ignore[assignment]

    def __init__(self, name: str, endpoint: IStreamClientEndpoint, clock: IReactorTime, *,
                 min_delay: float, max_delay: float, jitter: Callable[[], float] | None = None):
        self.setName(name)
        self.clock = clock
        self.protocol: P | None = None  # the logged-in connection's protocol, when up
        self.role, self.since = DOWN, clock.seconds()
        self.ups = self.failures = self.failed_attempts = 0
        self.last_error: str | None = None
        self._parking = False  # closing by design: the loss ends in ``parked``, not ``down``
        self._wanted = False  # demanded while parking: reconnect as soon as parked
        self._observers: list[Callable[[Self, str, str], object]] = []
        self._attempt: _Guard[P] | None = None  # the connection prepareConnection is given next
        policy = backoff(min_delay, max(max_delay, min_delay),
                         jitter=jitter if jitter is not None else random.Random().random)
        self._factory: _Handover[P] = _Handover()
        self._service = ClientService(_GuardedEndpoint(endpoint, self), self._factory,
                                      retryPolicy=policy, clock=clock,
                                      prepareConnection=self._prepare)

    # ---- what a subclass supplies ----------------------------------------------
    def build_protocol(self) -> P:
        """A fresh protocol for a new connection."""
        raise NotImplementedError

    def log_in(self, protocol: P) -> Deferred:
        """Log in on a fresh connection; fails with one of ``errors`` when refused."""
        raise NotImplementedError

    def log_out(self, protocol: P) -> Deferred:
        """Say goodbye before the link closes the connection on stop."""
        return succeed(None)

    # ---- state -------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The current state in the protocol's words (``bound``, ``up`` ...)."""
        return self.names[self.role]

    @property
    def is_up(self) -> bool:
        return self.role == UP

    @property
    def parked(self) -> bool:
        """Closed, or closing, by design: it comes back on ``demand``, not by itself."""
        return self._parking or self.role == PARKED

    def snapshot(self) -> LinkState:
        return LinkState(self.state, self.since, self.ups, self.failures,
                         self.failed_attempts, self.last_error)

    def observe(self, callback: Callable[[Self, str, str], object]) -> Callable[[], None]:
        """Call ``callback(link, old, new)`` (states in the protocol's words) on every
        change; returns an unsubscriber. A failing observer is logged and skipped."""
        self._observers.append(callback)

        def unsubscribe() -> None:
            if callback in self._observers:
                self._observers.remove(callback)

        return unsubscribe

    def _move(self: Self, role: str) -> None:
        old = self.role
        if role not in TRANSITIONS[old]:
            raise IllegalTransition(f"{self.label}: {self.names[old]} -> {self.names[role]}")
        self.role, self.since = role, self.clock.seconds()
        why = f" ({self.last_error})" if role == DOWN and self.last_error else ""
        self.log.info("{link} {old} -> {new}{why}", link=self.label, old=self.names[old],
                      new=self.names[role], why=why)
        for callback in list(self._observers):
            try:
                callback(self, self.names[old], self.names[role])
            except Exception:  # a faulty observer must not stop the others or the link
                self.log.failure("{link}: observer {cb!r} failed", link=self.label, cb=callback)

    # ---- service -------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        self._service.startService()

    def stopService(self) -> Deferred:
        """Log out if up, then stop reconnecting; fires when the connection is closed."""
        super().stopService()
        protocol = self.protocol
        if self.role == UP and protocol is not None:
            self._move(CLOSING)
            d = maybeDeferred(self.log_out, protocol)
            d.addErrback(self._log_out_failed)
            return d.addCallback(lambda _: self._service.stopService())
        return self._service.stopService()

    def when_up(self) -> Deferred:
        """Fires with the logged-in protocol (at once if the link is up)."""
        return self._service.whenConnected()

    # ---- closed by design ----------------------------------------------------------
    def park(self, say_goodbye: bool = True) -> Deferred:
        """Close the connection by design (idle) and stay parked until ``demand``.

        ``say_goodbye``: log out first (our idle timer); False when the server's own
        goodbye is closing it. Either way the link leaves ``up`` at once, so nothing
        more is sent on it, and ClientService stops when the connection is gone (not
        before: it would cut answers still due on it). Fires once logged out.
        """
        protocol = self.protocol
        if self.role != UP or protocol is None:
            return succeed(None)
        self._parking = True
        self._move(CLOSING)
        if not say_goodbye:
            return succeed(None)
        return maybeDeferred(self.log_out, protocol).addErrback(self._log_out_failed)

    def demand(self) -> None:
        """Something is to be sent: a parked link connects again (ClientService, its
        backoff); one still closing by design does so once closed."""
        if not self.running:
            return
        if self.role == PARKED:
            self._parking = self._wanted = False
            self._move(DOWN)
            self._service.startService()
        elif self._parking:
            self._wanted = True

    def _log_out_failed(self, failure: Failure) -> None:
        if not failure.check(*self.errors):
            self.log.failure("{link}: log out failed", failure, link=self.label)

    # ---- one connection ----------------------------------------------------------------
    def _prepare(self, _service_side: IProtocol) -> Deferred:
        """ClientService's ``prepareConnection``: log in on the connection just made."""
        guard = self._attempt
        assert guard is not None
        self._move(PREPARING)
        guard.login = maybeDeferred(self.log_in, guard.protocol)
        return guard.login.addCallback(self._accept, guard).addErrback(self._refuse, guard)

    def _accept(self, _result: object, guard: _Guard[P]) -> None:
        if guard.lost:
            raise LinkClosed(f"connection closed during {self.login_verb}")
        guard.accepted = True
        self.protocol = guard.protocol
        self.ups += 1
        self.failed_attempts = 0
        self.last_error = None
        self._move(UP)

    def _refuse(self, failure: Failure, guard: _Guard[P]) -> Failure:
        """Write the connection off and close it; the failure goes on to ClientService."""
        stopping = failure.check(CancelledError) and not guard.lost
        if not stopping:
            if not failure.check(CancelledError, LinkClosed, *self.errors):
                self.log.failure("{link}: {verb} failed unexpectedly", failure,
                                 link=self.label, verb=self.login_verb)
            why = "connection closed" if failure.check(CancelledError) \
                else failure.getErrorMessage()
            self.failures += 1
            self.failed_attempts += 1
            self.last_error = f"{self.login_verb} failed: {why}"
        if self.role == PREPARING:
            self._move(DOWN)
        if not guard.lost and guard.transport is not None:
            guard.transport.loseConnection()
        return failure

    def _lost(self, guard: _Guard[P], reason: Failure) -> None:
        if guard.accepted:
            if guard.protocol is self.protocol:
                self.protocol = None
            if self.role == UP:
                self.last_error = reason.getErrorMessage()
            if self._parking and self.role == CLOSING:
                # ClientService is ``waiting`` to retry: stopped before observers hear of
                # the park (one may demand the link back at once).
                self._service.stopService()
                self._move(PARKED)
                if self._wanted:
                    self.demand()
            elif self.role in (UP, CLOSING):
                self._move(DOWN)
        elif guard.login is not None and not guard.login.called:
            guard.login.cancel()  # a log_in that waits on something other than this connection


class _Handover(Factory[P]):
    """The factory ClientService wraps: it hands over the protocol ``_GuardFactory`` just
    built, so that ClientService's wrapper and the guard hold the same protocol."""

    noisy = False
    next: P | None = None

    def buildProtocol(self, addr) -> P:
        protocol, self.next = self.next, None
        assert protocol is not None
        return protocol


@implementer(IStreamClientEndpoint)
class _GuardedEndpoint(Generic[P]):
    """The link's endpoint as ClientService sees it: every connection gets a ``_Guard``."""

    def __init__(self, endpoint: IStreamClientEndpoint, link: Link[P]):
        self.endpoint, self.link = endpoint, link

    def connect(self, service_factory: IProtocolFactory) -> Deferred:
        d = self.endpoint.connect(_GuardFactory(service_factory, self.link))
        return d.addCallback(self._connected)

    def _connected(self, protocol: IProtocol) -> IProtocol:
        """The connection made (of those an endpoint may race) is the one prepareConnection,
        called next in this chain, logs in on."""
        # connect() fires with what _GuardFactory built; IStreamClientEndpoint is not generic.
        guard = cast(_Guard[P], protocol)
        self.link._attempt = guard
        return guard.service_side


class _GuardFactory(Factory, Generic[P]):
    noisy = False

    def __init__(self, service_factory: IProtocolFactory, link: Link[P]):
        self.service_factory, self.link = service_factory, link

    # Factory's stubs want a Protocol subclass with a ``factory``; IProtocolFactory, which
    # the endpoint asks for, takes any IProtocol (the guard is not a Protocol on purpose).
    def buildProtocol(self, addr) -> _Guard[P]:  # type: ignore[override]
        protocol = self.link.build_protocol()
        self.link._factory.next = protocol
        service_side = self.service_factory.buildProtocol(addr)
        assert service_side is not None  # ClientService's factory always builds its wrapper
        return _Guard(self.link, protocol, service_side)


@implementer(IProtocol)
class _Guard(Generic[P]):
    """What the transport talks to: bytes go straight to the protocol; a loss reaches
    ClientService (through its wrapper) only if the connection was accepted."""

    def __init__(self, link: Link[P], protocol: P, service_side: IProtocol):
        self.link, self.protocol = link, protocol
        self.service_side = service_side  # ClientService's wrapper around ``protocol``
        self.transport = None
        self.login: Deferred | None = None
        self.accepted = self.lost = False
        self.dataReceived = protocol.dataReceived  # the hot path, without a hop

    def makeConnection(self, transport) -> None:
        self.transport = transport
        self.service_side.makeConnection(transport)

    def connectionMade(self) -> None:
        """Not called: ``makeConnection`` hands the transport on."""

    def connectionLost(self, reason: Failure) -> None:
        self.lost = True
        if self.accepted:
            self.service_side.connectionLost(reason)  # the protocol, then ClientService
        else:
            self.protocol.connectionLost(reason)  # ClientService counts it via prepareConnection
        self.link._lost(self, reason)
