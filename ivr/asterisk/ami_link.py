"""The daemon's lasting AMI link: a ``common.link.Link`` that logs in, pings, fans events out.

Reconnection, backoff and the link's states come from ``common.link``; Login
runs in ``prepareConnection``, so a refused login counts as a failed connection.
Subscribers register on the link, not on a connection, and so survive
reconnects; ``on_up`` callbacks run after every successful login (the call
dispatcher uses that to recover calls left waiting while the link was down).
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

from common.link import CLOSING, DOWN, PREPARING, UP, Link
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiConnectionLost, AmiError, AmiProtocol

EventCallback = Callable[[Message], None]


class AmiLink(Link):
    """Keeps one logged-in AMI connection alive and offers ``action`` / ``list_action`` on it."""

    names = {DOWN: "down", PREPARING: "logging-in", UP: "up", CLOSING: "logging-off"}
    label = "AMI link"
    errors = (AmiError,)

    def __init__(self, endpoint: IStreamClientEndpoint, username: str, secret: str,
                 clock: IReactorTime, action_timeout: float = 10.0, ping_interval: float = 20.0,
                 initial_delay: float = 0.5, max_delay: float = 30.0,
                 jitter: Callable[[], float] | None = None):
        super().__init__("ami", endpoint, clock, min_delay=initial_delay, max_delay=max_delay,
                         jitter=jitter)
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self._username, self._secret = username, secret
        self._subscribers: dict[str | None, list[EventCallback]] = {}

    # ---- the link's hooks ----------------------------------------------------
    def build_protocol(self) -> AmiProtocol:
        return AmiProtocol(self.clock, self.action_timeout, on_event=self._event)

    def log_in(self, protocol: AmiProtocol) -> Deferred:
        d = protocol.login(self._username, self._secret)
        return d.addCallback(lambda _: protocol.start_keepalive(self.ping_interval))

    def log_out(self, protocol: AmiProtocol) -> Deferred:
        return protocol.action("Logoff", timeout=2.0)

    # ---- lifecycle, as the IVR service calls it ---------------------------------
    def start(self) -> None:
        self.startService()

    def stop(self) -> Deferred:
        """Log off if connected, then stop reconnecting; fires when the connection is closed."""
        return self.stopService()

    # ---- observers ---------------------------------------------------------
    def on_up(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after every successful login (first connect and reconnects)."""
        self.observe(lambda _link, _old, new: callback() if new == self.names[UP] else None)

    def on_down(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` whenever a logged-in connection ends."""
        ended = {self.names[UP], self.names[CLOSING]}
        self.observe(lambda _link, old, new:
                     callback() if old in ended and new == self.names[DOWN] else None)

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
            return fail(AmiConnectionLost(f"{name}: AMI link is {self.state}"))
        return self.protocol.action(name, headers, variables, timeout)

    def list_action(self, name: str, headers: dict[str, str] | None = None,
                    timeout: float | None = None) -> Deferred:
        if self.protocol is None or not self.is_up:
            return fail(AmiConnectionLost(f"{name}: AMI link is {self.state}"))
        return self.protocol.list_action(name, headers, timeout)
