"""Twisted log events captured as formatted lines."""
from __future__ import annotations

from twisted.logger import formatEvent, globalLogPublisher


class Logged(list):
    """Formatted log lines while the block runs."""

    def __enter__(self):
        globalLogPublisher.addObserver(self._see)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self._see)

    def _see(self, event):
        self.append(formatEvent(event))
