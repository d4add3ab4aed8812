"""The daemon's door to the prompt library: audio work in threads, rows via Database.run.

The recording flow talks only to this object (``recording_flow.Store``), so
its tests use a fake with the same methods.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from core_client import limits
from prompts import audio, library, staff, transfer
from prompts.config import PromptsConfig
from prompts.installed import InstalledPrompts

log = Logger()


def settings(config: PromptsConfig) -> audio.Settings:
    return audio.Settings(formats=config.all_formats, loudness_dbfs=config.loudness_dbfs,
                          max_seconds=config.max_seconds)


class PromptStore:
    """Processing, installing and moving prompt files for the running daemon.

    The recording flow runs on the reactor thread, so nothing here looks at a file there:
    what is installed comes from ``installed`` (prompt_current, read off the reactor; the
    IVR's own instance when given) and every file operation runs on the pool."""

    def __init__(self, config: PromptsConfig, db: Any, reactor: Any, threadpool: Any = None,
                 installed: InstalledPrompts | None = None):
        self.config, self.db, self.reactor = config, db, reactor
        self._threadpool = threadpool
        self.installed = installed if installed is not None else \
            InstalledPrompts(config.library_dir, db)
        self.local_dir = Path(config.library_dir) / "incoming-local"

    @property
    def threadpool(self) -> Any:
        """The reactor's pool unless one was given; asked for only when audio is processed."""
        if self._threadpool is None:
            self._threadpool = self.reactor.getThreadPool()
        return self._threadpool

    def _in_thread(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return deferToThreadPool(self.reactor, self.threadpool, f, *args, **kwargs)

    async def fresh(self) -> None:
        """Catch up with prompts installed since the last look (a database read)."""
        await self.installed.fresh()

    def path(self, center: str, lang: str, prompt_id: str) -> str:
        """What Asterisk should play for this prompt (no extension)."""
        return self.installed.path(center, lang, prompt_id)

    def exists(self, center: str, lang: str, prompt_id: str) -> bool:
        """Whether callers of this center hear anything for the prompt (own or default)."""
        return self.installed.heard(center, lang, prompt_id)

    async def new_recording(self) -> str:
        """A fresh path without extension, on Asterisk's host, for RECORD FILE."""
        if not self.config.fetch_command:  # a shared mount: make sure the folder exists
            await self._in_thread(Path(self.config.recording_dir).mkdir, parents=True,
                                  exist_ok=True)
        return str(Path(self.config.recording_dir) / f"rec-{uuid.uuid4().hex}")

    async def login(self, number: str, pin: str, caller: str) -> staff.Login:
        """Reserve the attempt, check the PIN off the lock, record the outcome."""
        rules = staff.PinRules(self.config.pin_max_failures,
                               self.config.pin_lockout_minutes * 60,
                               self.config.pin_caller_failures)
        stored = await limits.run(self.db, staff.begin_login, number, caller,
                                  self.reactor.seconds(), rules)
        if stored is None:
            return staff.Login.LOCKED
        ok = await self.db.run(staff.pin_matches, pin, stored)
        return await limits.run(self.db, staff.end_login, number, caller, ok,
                                self.reactor.seconds(), rules)

    async def fetch(self, remote: str) -> str:
        """The wav RECORD FILE wrote to ``remote`` (no extension) as a local file:
        the same path on a shared mount, else copied by ``fetch_command``."""
        local = self.local_copy(remote)
        if self.config.fetch_command:
            await self._in_thread(self.local_dir.mkdir, parents=True, exist_ok=True)
            argv = transfer.expand(self.config.fetch_command,
                                   {"remote": f"{remote}.wav", "local": local})
            await transfer.run(self.reactor, argv, self.config.command_timeout)
        return local

    async def install(self, path: str, prompt_id: str, center: str, lang: str, source: str,
                      who: str) -> library.Change:
        """Process (in a thread), install as a new version, then publish to Asterisk.

        Raises ``audio.AudioRejected`` for unusable audio, with nothing installed.
        """
        processed = await self._in_thread(audio.process_file, path, settings(self.config))
        change = await self.db.run(library.install, self.config.library_dir, prompt_id,
                                   center, lang, processed, source, who,
                                   self.reactor.seconds())
        await self.installed.fresh()  # this daemon's next calls play it at once
        log.info("prompt {prompt_id} ({center}, {lang}) version {new} installed by {who}",
                 prompt_id=prompt_id, center=center, lang=lang, new=change.new_version, who=who)
        await self.publish()
        return change

    async def publish(self) -> None:
        if self.config.publish_command:
            argv = transfer.expand(self.config.publish_command,
                                   {"library_dir": str(self.config.library_dir)})
            await transfer.run(self.reactor, argv, self.config.command_timeout)

    def local_copy(self, remote: str) -> str:
        """Where the daemon reads a recording RECORD FILE wrote to ``remote`` (no extension)."""
        if not self.config.fetch_command:
            return f"{remote}.wav"
        return str(self.local_dir / f"{os.path.basename(remote)}.wav")

    async def discard(self, remote: str) -> None:
        """Remove the daemon's copy of a raw recording (on a shared mount, the only one)."""
        await self._in_thread(Path(self.local_copy(remote)).unlink, missing_ok=True)

