"""Receipts and MO read from a link, handed on a few per reactor turn: one mechanism for
SMPP's deliver_sm and the carriers' DELIVER, Deliver and Report.

A gateway sends receipts in bursts of a window or more; handled in one go, they
would hold back the submit responses read right behind them, and with them the
window. ``DeliverQueue`` hands at most ``per_turn`` to ``handle`` per reactor
turn and lets the reactor read the socket again in between. What is still
queued when the link drops is dropped too: it was never acknowledged, so the
gateway delivers it again.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime

PER_TURN = 16


class DeliverQueue:
    """Items waiting for their turn; ``kick`` after a read schedules the next slice."""

    def __init__(self, clock: IReactorTime, handle: Callable[[object], None],
                 live: Callable[[], bool], per_turn: int = PER_TURN):
        self.clock, self.handle, self.live, self.per_turn = clock, handle, live, per_turn
        self._items: deque = deque()
        self._call = None

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item) -> None:
        self._items.append(item)

    def kick(self) -> None:
        if self._items and self._call is None:
            self._call = self.clock.callLater(0, self._slice)

    def clear(self) -> None:
        self._items.clear()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _slice(self) -> None:
        self._call = None
        items = self._items
        for _ in range(min(self.per_turn, len(items))):
            if not self.live():
                return
            self.handle(items.popleft())
        self.kick()
