"""One table of outstanding requests, by key, for every protocol that matches answers to asks.

AMI ActionIDs, AGI CommandIDs, SMPP, CMPP and SMGP sequence numbers and SGIP's
12-octet ones all keep the same thing, as AMP's ``BoxDispatcher`` keeps
``_outstandingRequests`` once for every command: per request a Deferred, a label
for messages (the action, command or verb) and a timer on the injected clock.
A request leaves the table exactly once: answered (``resolve``/``fail``/``pop``),
timed out (its Deferred fails with the table's timeout error), cancelled by its
caller, or failed with every other one by ``fail_all`` when the connection ends.

The table keeps one timer, not one per request: each request carries its deadline,
and the timer is set for the earliest. A busy link answers hundreds of requests a
second, and a timer each was a ``callLater`` and a ``cancel`` (and the reactor's heap
churning with the cancelled ones) for every SMS part sent. The timer is pending
exactly while the table holds a request.
"""
from __future__ import annotations

from typing import Generic, TypeVar
from collections.abc import Callable, Hashable, Iterator

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

K = TypeVar("K", bound=Hashable)


class Request:
    """One outstanding request: its Deferred, its label, its deadline and timeout, and
    what the protocol keeps beside it (``data``: an AMI list action's events so far)."""

    __slots__ = ("deferred", "label", "deadline", "timeout", "data")

    def __init__(self, deferred: Deferred, label: str, deadline: float, timeout: float,
                 data: object):
        self.deferred, self.label, self.data = deferred, label, data
        self.deadline, self.timeout = deadline, timeout


#: A request is due when the clock is this close to its deadline: the timer's own time
#: is computed from "now" again when it is set for a later request, and may land an ulp
#: before that request's deadline.
_SLACK = 1e-6


class PendingRequests(Generic[K]):
    """Requests waiting for an answer, by key.

    ``timeout_error(label, seconds)`` makes the exception a request fails with when
    its time is up; it is the protocol's own typed error.
    """

    def __init__(self, clock: IReactorTime,
                 timeout_error: Callable[[str, float], Exception]):
        self.clock = clock
        self.timeout_error = timeout_error
        self._requests: dict[K, Request] = {}
        self._timer: IDelayedCall | None = None

    def add(self, key: K, label: str, timeout: float, deferred: Deferred | None = None,
            data: object = None) -> Deferred:
        """Wait for the answer to ``key``; returns ``deferred`` or a new cancellable one."""
        if key in self._requests:
            raise KeyError(f"{label}: request {key!r} is already outstanding")
        if deferred is None:
            def cancel(_d: Deferred) -> None:
                self.pop(key)

            deferred = Deferred(cancel)
        deadline = self.clock.seconds() + timeout
        self._requests[key] = Request(deferred, label, deadline, timeout, data)
        timer = self._timer
        if timer is None:
            self._timer = self.clock.callLater(timeout, self._expire_due)
        elif deadline < timer.getTime():
            timer.reset(timeout)
        return deferred

    def get(self, key: K) -> Request | None:
        """The request still waiting under ``key``, left in the table."""
        return self._requests.get(key)

    def pop(self, key: K) -> Request | None:
        """Take the request out (the timer stops with the last one); the caller fires its
        Deferred."""
        request = self._requests.pop(key, None)
        if request is not None and not self._requests:
            self._stop_timer()
        return request

    def resolve(self, key: K, result: object) -> bool:
        """Fire the request's Deferred with ``result``; False when nothing waits under ``key``."""
        request = self.pop(key)
        if request is None:
            return False
        request.deferred.callback(result)
        return True

    def fail(self, key: K, error: Exception) -> bool:
        """Fail the request's Deferred with ``error``; False when nothing waits under ``key``."""
        request = self.pop(key)
        if request is None:
            return False
        request.deferred.errback(error)
        return True

    def fail_all(self, error_for: Callable[[str], Exception]) -> int:
        """Fail every request with ``error_for(label)`` (the connection ended); how many."""
        requests, self._requests = self._requests, {}
        self._stop_timer()
        for request in requests.values():
            request.deferred.errback(error_for(request.label))
        return len(requests)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire_due(self) -> None:
        """Fail every request whose time is up, then wait for the next deadline."""
        self._timer = None
        now = self.clock.seconds()
        due = [(key, request) for key, request in self._requests.items()
               if request.deadline <= now + _SLACK]
        for key, _request in due:
            del self._requests[key]
        if self._requests:
            next_deadline = min(request.deadline for request in self._requests.values())
            self._timer = self.clock.callLater(max(next_deadline - now, 0.0), self._expire_due)
        for _key, request in due:
            request.deferred.errback(self.timeout_error(request.label, request.timeout))

    # ---- inspection ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, key: object) -> bool:
        return key in self._requests

    def outstanding(self) -> Iterator[tuple[K, str]]:
        """``(key, label)`` of every request still waiting, oldest first."""
        return ((key, request.label) for key, request in list(self._requests.items()))
