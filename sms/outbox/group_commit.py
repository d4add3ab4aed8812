"""One transaction for everything that arrived while the previous one ran."""
from __future__ import annotations

from typing import Any
from collections.abc import Callable

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

log = Logger(namespace="hotline.sms.outbox")


class GroupCommit:
    """Items added while one transaction runs are committed together in the next.

    ``fn(session, items)`` returns one result per item (an exception instance
    fails that item's Deferred); every Deferred fires only after the commit.
    Items added with ``add_quiet`` have no Deferred: ``on_committed(items)`` hears
    them once per transaction instead (the hot path's thousands of submit results);
    ``on_results(results)`` hears every committed transaction's results, once, after
    their Deferreds fired (what the whole batch wakes, woken by one call, not per item).
    With ``turns`` (the reactor), an idle lane starts its transaction at the end of the
    reactor turn rather than at the first item: what one read of a socket brought (a
    burst of receipts, a window of submit_sm at the door) commits together instead of
    the first item alone and the rest after it.

    With ``turns`` and ``hold``, an item added with ``add_held`` (a receipt, while a
    window's submit results are on their way) starts no transaction of its own: it rides
    in the next one, which those results start just after their burst is written, or
    starts one itself ``hold`` seconds later. A transaction of receipts alone would
    otherwise run its thread beside the reactor as the next window's answers arrive, and
    the two take turns holding the interpreter.
    """

    def __init__(self, db, fn: Callable, lock: DeferredLock, max_batch: int = 2000,
                 on_committed: Callable[[list], None] | None = None,
                 turns: IReactorTime | None = None, hold: float = 0.0,
                 on_results: Callable[[list], None] | None = None):
        self.db, self.fn, self.lock, self.max_batch = db, fn, lock, max_batch
        self.on_committed, self.on_results = on_committed, on_results
        self.turns = turns
        self.hold = hold if turns is not None else 0.0
        self._pending: list[tuple[Any, Deferred | None]] = []
        self._running = False
        self._turn_end: IDelayedCall | None = None
        self._held_end: IDelayedCall | None = None  # the latest start of held items

    def add(self, item: Any) -> Deferred:
        d: Deferred = Deferred()
        self._pending.append((item, d))
        self._added()
        return d

    def add_held(self, item: Any) -> Deferred:
        """``add``, but the item waits for the next transaction another item starts, at most
        ``hold`` seconds (without ``turns`` or ``hold``: ``add``)."""
        if not self.hold:
            return self.add(item)
        d: Deferred = Deferred()
        self._pending.append((item, d))
        if self._held_end is None:
            self._held_end = self.turns.callLater(self.hold, self._held_due)
        return d

    def add_quiet(self, *items: Any) -> None:
        self._pending.extend((item, None) for item in items)
        self._added()

    def _added(self) -> None:
        if self.turns is None:
            self._kick()
        elif self._turn_end is None and not self._running:
            self._turn_end = self.turns.callLater(0, self._at_turn_end)

    def _at_turn_end(self) -> None:
        self._turn_end = None
        self._kick()

    def _held_due(self) -> None:
        self._held_end = None
        self._kick()

    def _kick(self) -> None:
        if self._running or not self._pending:
            return
        self._running = True
        if self._held_end is not None:  # what is held goes in this transaction or the next
            self._held_end.cancel()
            self._held_end = None
        batch = self._pending[:self.max_batch]
        del self._pending[:self.max_batch]
        d = self.lock.run(self.db.run, self.fn, [item for item, _ in batch])
        d.addCallbacks(self._done, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _done(self, results, batch) -> None:
        self._running = False
        quiet = []
        for (item, d), result in zip(batch, results, strict=True):
            if d is None:
                quiet.append(item)
            elif isinstance(result, Exception):
                d.errback(result)
            else:
                d.callback(result)
        if quiet and self.on_committed is not None:
            self.on_committed(quiet)
        if self.on_results is not None:
            self.on_results(results)
        self._kick()

    def _failed(self, failure, batch) -> None:
        self._running = False
        log.failure("outbox transaction failed ({n} items)", failure, n=len(batch))
        for _, d in batch:
            if d is not None:
                d.errback(failure)
        self._kick()
