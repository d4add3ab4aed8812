"""Which prompts each center has installed, kept in memory for the IVR's lookups.

A call plays 20-30 prompts, and each names either the center's own recording or the
default one. Asking the disk which (up to six ``stat`` calls a prompt, one per format)
ran on the reactor thread, between a caller's key and the next prompt. The answer comes
from ``prompt_current`` instead, the table every install and rollback writes and every
daemon of a cluster shares. Each call asks at its start, off the reactor, for the newest
prompt change (the audit trail's last id) and reads the table again only when it moved,
so the next call plays what the console, a phone recording, the CLI or another daemon
installed a moment ago.
"""
from __future__ import annotations

import os
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from twisted.logger import Logger

from prompts import library
from prompts.layout import DEFAULT_CENTER, current_base

log = Logger(namespace="hotline.prompts")


class InstalledPrompts:
    """The installed (center, language, prompt) keys as of the last prompt change seen."""

    def __init__(self, library_dir: str | os.PathLike, db: Any):
        self.library_dir, self.db = library_dir, db
        self._keys: frozenset[tuple[str, str, str]] = frozenset()
        self._change: int | None = None

    @classmethod
    def defaults_only(cls, library_dir: str | os.PathLike) -> InstalledPrompts:
        """Every prompt from the ``default`` center, nothing read (no database)."""
        return cls(library_dir, db=None)

    def path(self, center: str, lang: str, prompt_id: str) -> str:
        """What Asterisk plays (no extension): the center's own recording if it installed
        one, else the ``default`` center's. No file is looked at."""
        owner = center if (center, lang, prompt_id) in self._keys else DEFAULT_CENTER
        return current_base(self.library_dir, owner, lang, prompt_id)

    def heard(self, center: str, lang: str, prompt_id: str) -> bool:
        """Whether callers of ``center`` hear a recording of the prompt: the center's own
        or the ``default`` center's. No file is looked at."""
        return (center, lang, prompt_id) in self._keys or \
            (DEFAULT_CENTER, lang, prompt_id) in self._keys

    async def fresh(self) -> None:
        """Catch up with the prompt changes made since the last look. A failed read keeps
        what was known (the call goes on) and the next call tries again."""
        if self.db is None:
            return
        try:
            change, keys = await self.db.run(library.installed_since, self._change)
        except SQLAlchemyError:
            log.failure("reading the installed prompts failed; the call plays the last known")
            return
        if keys is not None:
            self._change, self._keys = change, frozenset(keys)
