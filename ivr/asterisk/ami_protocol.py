"""AMI over one TCP connection: frames in, ActionID-matched Deferreds out, events to a callback.

This layer knows nothing about calls. It frames bytes with ``ami_codec``,
matches each Response (and, for list actions, the events up to the
``EventList: Complete``) to the action that asked by ActionID, gives every
action a timeout on the injected clock, hands all other events to
``on_event``, and fails everything pending when the connection ends.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from collections.abc import Callable

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.pending import PendingRequests
from ivr.asterisk.ami_codec import FrameSplitter, MalformedFrame, Message, encode_action, parse_frame


class AmiError(Exception):
    """Base of the AMI protocol's typed failures."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is its Message header."""

    def __init__(self, action: str, message: str, response: Message | None = None):
        super().__init__(f"{action}: {message}")
        self.action, self.message, self.response = action, message, response


class AmiLoginError(AmiActionError):
    """Asterisk refused the login (wrong user or secret, or not allowed from here)."""


class AmiTimeout(AmiError):
    """No complete answer to an action within its timeout."""


class AmiConnectionLost(AmiError):
    """The connection ended while the action was pending, or before it was sent."""


@dataclass
class ListResult:
    """The answer to a list action: its Response, the listed events and the closing event."""

    response: Message
    events: list[Message] = field(default_factory=list)
    complete: Message | None = None


_LIST = "list"  # a list action's data until its Response: then the ListResult it fills


class AmiProtocol(Protocol):
    """One AMI connection. ``on_event(message)`` receives every event no action is waiting for."""

    log = Logger()

    def __init__(self, clock: IReactorTime, action_timeout: float = 10.0,
                 on_event: Callable[[Message], None] | None = None):
        self.clock = clock
        self.action_timeout = action_timeout
        self.on_event = on_event
        self._splitter = FrameSplitter()
        self._pending: PendingRequests[str] = PendingRequests(
            clock, lambda action, seconds: AmiTimeout(f"{action}: no answer within {seconds:g}s"))
        self._ids = itertools.count(1)
        self._prefix = f"h{id(self):x}"
        self._ping: IDelayedCall | None = None
        self._ping_interval: float | None = None
        self.connected = False
        self.malformed = 0

    @property
    def banner(self) -> str | None:
        return self._splitter.banner

    def connectionMade(self) -> None:
        self.connected = True

    def dataReceived(self, data: bytes) -> None:
        for frame in self._splitter.feed(data):
            try:
                message = parse_frame(frame)
            except MalformedFrame as e:
                self.malformed += 1
                self.log.warn("AMI: skipped a malformed frame: {problem}", problem=str(e))
                continue
            self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        action_id = message.action_id
        pending = self._pending.get(action_id) if action_id is not None else None
        if pending is None:
            if message.event is not None:
                self._deliver(message)
            elif message.response is not None:
                self.log.debug("AMI: response to no pending action: {m}", m=message.masked())
            return
        listing = pending.data
        if message.response is not None and not isinstance(listing, ListResult):
            if message.response.lower() == "error":
                self._pending.fail(action_id, AmiActionError(pending.label,
                                                             message.get("Message", ""), message))
            elif listing is _LIST and (message.get("EventList") or "").lower() == "start":
                pending.data = ListResult(message)
            elif listing is _LIST:
                self._pending.resolve(action_id, ListResult(message))
            else:
                self._pending.resolve(action_id, message)
            return
        if isinstance(listing, ListResult) and message.event is not None:
            if (message.get("EventList") or "").lower() == "complete":
                listing.complete = message
                self._pending.resolve(action_id, listing)
            else:
                listing.events.append(message)
            return
        if message.event is not None:
            self._deliver(message)

    def _deliver(self, message: Message) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(message)
        except Exception:  # one faulty subscriber must not break the connection
            self.log.failure("AMI: event handler failed on {event}", event=message.event)

    def _send(self, name: str, headers: dict[str, str] | None,
              variables: dict[str, str] | None, timeout: float | None,
              is_list: bool) -> Deferred:
        if not self.connected or self.transport is None:
            return fail(AmiConnectionLost(f"{name}: not connected"))
        action_id = f"{self._prefix}-{next(self._ids)}"
        data = encode_action(name, {**(headers or {}), "ActionID": action_id}, variables)
        d = self._pending.add(action_id, name,
                              timeout if timeout is not None else self.action_timeout,
                              data=_LIST if is_list else None)
        self.transport.write(data)
        return d

    def action(self, name: str, headers: dict[str, str] | None = None,
               variables: dict[str, str] | None = None, timeout: float | None = None
               ) -> Deferred:
        """Send an action; fires with its Response Message, or fails with an AmiError."""
        return self._send(name, headers, variables, timeout, is_list=False)

    def list_action(self, name: str, headers: dict[str, str] | None = None,
                    timeout: float | None = None) -> Deferred:
        """Send an action that answers with an event list; fires with a ListResult."""
        return self._send(name, headers, None, timeout, is_list=True)

    def login(self, username: str, secret: str) -> Deferred:
        """Log in; a refusal fails with AmiLoginError (the secret is never logged)."""
        d = self.action("Login", {"Username": username, "Secret": secret, "Events": "on"})

        def refused(failure: Failure) -> Failure:
            failure.trap(AmiActionError)
            raise AmiLoginError("Login", failure.value.message, failure.value.response)

        return d.addErrback(refused)

    def start_keepalive(self, interval: float) -> None:
        """Ping every ``interval`` seconds; an unanswered Ping drops the connection."""
        self._ping_interval = interval
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        if self.connected and self._ping_interval is not None:
            self._ping = self.clock.callLater(self._ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        def failed(failure: Failure) -> None:
            failure.trap(AmiError)
            if self.connected:
                self.log.warn("AMI: keepalive failed ({why}); dropping the connection",
                              why=str(failure.value))
                self.transport.abortConnection()

        self.action("Ping").addCallbacks(lambda _: self._schedule_ping(), failed)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.connected = False
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        why = reason.getErrorMessage()
        self._pending.fail_all(lambda action: AmiConnectionLost(
            f"{action}: connection lost ({why})"))
