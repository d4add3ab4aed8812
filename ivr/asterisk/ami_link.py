"""The daemon's lasting AMI link: ClientService reconnection, login, event fan-out, link state.

Login happens in ``prepareConnection``, so a refused login counts as a failed
connection and is retried with jittered backoff like a refused TCP connect.
Subscribers register on the link, not on a connection, and so survive
reconnects; ``on_up`` callbacks run after every successful login (the call
dispatcher uses that to recover calls left waiting while the link was down).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiConnectionLost, AmiError, AmiProtocol

EventCallback = Callable[[Message], None]


@dataclass(frozen=True)
class LinkState:
    """What the link is doing: ``connecting``, ``up``, ``down`` or ``stopped``, since when."""

    state: str
    since: float
    reconnects: int
    failed_attempts: int
    last_error: str | None


class _AmiFactory(Factory):
    def __init__(self, link: "AmiLink"):
        self.link = link

    def buildProtocol(self, addr) -> AmiProtocol:
        protocol = AmiProtocol(self.link.clock, self.link.action_timeout,
                               on_event=self.link._event, on_lost=self.link._lost)
        self.link._connecting = protocol
        return protocol


class AmiLink:
    """Keeps one logged-in AMI connection alive and offers ``action`` / ``list_action`` on it."""

    log = Logger()

    def __init__(self, endpoint: IStreamClientEndpoint, username: str, secret: str,
                 clock: IReactorTime, action_timeout: float = 10.0, ping_interval: float = 20.0,
                 initial_delay: float = 0.5, max_delay: float = 30.0,
                 jitter: Callable[[], float] | None = None):
        self.clock = clock
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self._username, self._secret = username, secret
        self._subscribers: dict[str | None, list[EventCallback]] = {}
        self._up_callbacks: list[Callable[[], object]] = []
        self._down_callbacks: list[Callable[[], object]] = []
        self.protocol: AmiProtocol | None = None
        self._connecting: AmiProtocol | None = None  # ClientService connects one at a time
        self._state = LinkState("stopped", clock.seconds(), 0, 0, None)
        self._ever_up = False
        policy = backoffPolicy(initialDelay=initial_delay, maxDelay=max_delay, factor=2.0,
                               jitter=jitter if jitter is not None else random.Random().random)
        self.service = ClientService(endpoint, _AmiFactory(self), retryPolicy=policy,
                                     clock=clock, prepareConnection=self._login)

    # ---- state -------------------------------------------------------------
    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def is_up(self) -> bool:
        return self._state.state == "up"

    def _set_state(self, state: str, error: str | None = None, reconnect: bool = False,
                   failed: bool = False) -> None:
        old = self._state
        self._state = LinkState(
            state, self.clock.seconds(), old.reconnects + (1 if reconnect else 0),
            0 if state == "up" else old.failed_attempts + (1 if failed else 0),
            error if error is not None else (None if state == "up" else old.last_error))
        if old.state != state:
            self.log.info("AMI link {old} -> {new} (reconnects {n}{why})", old=old.state,
                          new=state, n=self._state.reconnects,
                          why=f"; {error}" if error else "")

    # ---- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._set_state("connecting")
        self.service.startService()

    def stop(self) -> Deferred:
        """Log off if connected, then stop reconnecting; fires when the connection is closed."""
        self._set_state("stopped")
        protocol = self.protocol
        if protocol is not None and protocol.connected:
            d = protocol.action("Logoff", timeout=2.0)
            d.addErrback(lambda f: f.trap(AmiError))
            return d.addBoth(lambda _: self.service.stopService())
        return self.service.stopService()

    def when_up(self) -> Deferred:
        """Fires with the logged-in protocol (at once if the link is up)."""
        return self.service.whenConnected()

    def _login(self, proxy) -> Deferred:
        protocol = self._connecting
        assert protocol is not None
        d = protocol.login(self._username, self._secret)

        def ok(_response: Message) -> None:
            reconnect = self._ever_up
            self._ever_up = True
            self.protocol = protocol
            protocol.start_keepalive(self.ping_interval)
            self._set_state("up", reconnect=reconnect)
            for callback in list(self._up_callbacks):
                self._run(callback)

        def refused(failure: Failure) -> Failure:
            failure.trap(AmiError)
            self._set_state("down", error=str(failure.value), failed=True)
            protocol.transport.loseConnection()
            return failure

        return d.addCallbacks(ok, refused)

    def _lost(self, protocol: AmiProtocol, reason: Failure) -> None:
        if protocol is not self.protocol:
            return
        self.protocol = None
        if self._state.state != "stopped":
            self._set_state("down", error=reason.getErrorMessage())
            self._set_state("connecting")
        for callback in list(self._down_callbacks):
            self._run(callback)

    def _run(self, callback: Callable[[], object]) -> None:
        try:
            callback()
        except Exception:  # a faulty observer must not stop the others or the link
            self.log.failure("AMI link observer {cb!r} failed", cb=callback)

    # ---- observers ---------------------------------------------------------
    def on_up(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after every successful login (first connect and reconnects)."""
        self._up_callbacks.append(callback)

    def on_down(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` whenever a logged-in connection ends."""
        self._down_callbacks.append(callback)

    def subscribe(self, event: str | None, callback: EventCallback) -> Callable[[], None]:
        """Deliver events named ``event`` (any case; None: all) to ``callback``; returns an unsubscriber."""
        key = event.lower() if event is not None else None
        self._subscribers.setdefault(key, []).append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers.get(key, []):
                self._subscribers[key].remove(callback)

        return unsubscribe

    def _event(self, message: Message) -> None:
        name = (message.event or "").lower()
        for callback in self._subscribers.get(name, []) + self._subscribers.get(None, []):
            try:
                callback(message)
            except Exception:  # isolate subscribers from each other and from the protocol
                self.log.failure("AMI subscriber failed on {event}", event=message.event)

    # ---- actions -----------------------------------------------------------
    def action(self, name: str, headers: dict[str, str] | None = None,
               variables: dict[str, str] | None = None, timeout: float | None = None
               ) -> Deferred:
        """Send on the current connection; fails at once with AmiConnectionLost when down."""
        if self.protocol is None or not self.is_up:
            return fail(AmiConnectionLost(f"{name}: AMI link is {self._state.state}"))
        return self.protocol.action(name, headers, variables, timeout)

    def list_action(self, name: str, headers: dict[str, str] | None = None,
                    timeout: float | None = None) -> Deferred:
        if self.protocol is None or not self.is_up:
            return fail(AmiConnectionLost(f"{name}: AMI link is {self._state.state}"))
        return self.protocol.list_action(name, headers, timeout)
