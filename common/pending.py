"""One table of outstanding requests, by key, for every protocol that matches answers to asks.

AMI ActionIDs, AGI CommandIDs and SMPP sequence numbers (and the CMPP, SMGP and
SGIP ones to come) all keep the same thing, as AMP's ``BoxDispatcher`` keeps
``_outstandingRequests`` once for every command: per request a Deferred, a label
for messages (the action, command or verb) and a timer on the injected clock.
A request leaves the table exactly once: answered (``resolve``/``fail``/``pop``),
timed out (its Deferred fails with the table's timeout error), cancelled by its
caller, or failed with every other one by ``fail_all`` when the connection ends.

While a request is in the table its timer is pending, and the reverse: so taking
one out cancels the timer without asking whether it is still active. The SMPP
submit path goes through here for every part: one small object per request
(where a tuple was before), no other allocation.
"""
from __future__ import annotations

from typing import Generic, TypeVar
from collections.abc import Callable, Hashable, Iterator

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

K = TypeVar("K", bound=Hashable)


class Request:
    """One outstanding request: its Deferred, its label, its timer, and what the protocol
    keeps beside it (``data``: an AMI list action's events so far)."""

    __slots__ = ("deferred", "label", "timer", "data")

    def __init__(self, deferred: Deferred, label: str, timer: IDelayedCall, data: object):
        self.deferred, self.label, self.timer, self.data = deferred, label, timer, data


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

    def add(self, key: K, label: str, timeout: float, deferred: Deferred | None = None,
            data: object = None) -> Deferred:
        """Wait for the answer to ``key``; returns ``deferred`` or a new cancellable one."""
        if key in self._requests:
            raise KeyError(f"{label}: request {key!r} is already outstanding")
        if deferred is None:
            deferred = Deferred(lambda _d: self.pop(key))
        timer = self.clock.callLater(timeout, self._expired, key, timeout)
        self._requests[key] = Request(deferred, label, timer, data)
        return deferred

    def get(self, key: K) -> Request | None:
        """The request still waiting under ``key``, left in the table."""
        return self._requests.get(key)

    def pop(self, key: K) -> Request | None:
        """Take the request out with its timer stopped; the caller fires its Deferred."""
        request = self._requests.pop(key, None)
        if request is not None:
            request.timer.cancel()
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
        for request in requests.values():
            request.timer.cancel()
        for request in requests.values():
            request.deferred.errback(error_for(request.label))
        return len(requests)

    def _expired(self, key: K, timeout: float) -> None:
        request = self._requests.pop(key)
        request.deferred.errback(self.timeout_error(request.label, timeout))

    # ---- inspection ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, key: object) -> bool:
        return key in self._requests

    def outstanding(self) -> Iterator[tuple[K, str]]:
        """``(key, label)`` of every request still waiting, oldest first."""
        return ((key, request.label) for key, request in list(self._requests.items()))
