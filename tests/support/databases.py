"""A real database driven without a reactor, for integration tests of code that calls
``Database.run``."""
from __future__ import annotations

from twisted.internet.defer import succeed

from storage.db import Database


class SyncDatabase:
    """Database.run on the calling thread, so tests need no reactor or thread pool."""

    def __init__(self, db: Database):
        self.db = db

    def run(self, fn, *args):
        return succeed(self.db.run_sync(fn, *args))
