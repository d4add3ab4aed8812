"""The prompt library in the console: listen, upload any audio format, versions, rollback.

Uploads go through the library's own import pipeline (``prompts.service.PromptStore``:
pydub/ffmpeg in a thread, a new immutable version, the installed tree updated
atomically), so a prompt uploaded here is what the next call plays. Every change is
in the prompt library's own trail and in the console's hash-chained audit log.
"""
from __future__ import annotations

import os
import tempfile
from urllib.parse import urlencode

from console import audit
from console.accounts import PROVINCE, RECORDER, User
from console.web import Reply, Route, arg, redirect
from prompts import catalog, library
from prompts.audio import AudioRejected
from prompts.layout import DEFAULT_CENTER
from prompts.service import PromptStore

LANGS = ("zh", "en")


def may_record(user: User) -> bool:
    return user.may_change or user.role == RECORDER


class PromptPages:
    def __init__(self, console, reactor):
        self.console, self.reactor = console, reactor
        self.config = console.config.prompts
        self.store = PromptStore(self.config, console.db, reactor)
        self.catalog = catalog.load()

    def mount(self) -> None:
        c = self.console
        c.add_page("/prompts", Route(self.page), nav="prompts")
        c.add_page("/prompts/audio", Route(self.audio))
        c.add_page("/prompts/upload", Route(self.page), Route(self.upload, allowed=may_record))
        c.add_page("/prompts/rollback", Route(self.page), Route(self.rollback, allowed=may_record))

    def _centers(self, user: User) -> list[str]:
        own = user.centers(self.console.config.centers)
        return ([DEFAULT_CENTER] if user.role == PROVINCE else []) + own

    def _where(self, request, user: User) -> tuple[str, str] | None:
        centers = self._centers(user)
        center = arg(request, "center") or centers[0]
        lang = arg(request, "lang") or "zh"
        if center not in centers or lang not in LANGS:
            return None
        return center, lang

    async def page(self, request, session, message: str | None = None) -> Reply:
        where = self._where(request, session.user)
        if where is None:
            return self.console.error_page(403, "forbidden", session.lang)
        center, lang = where
        versions = await self.console.db.run(library.versions, None, None, lang)
        installed = await self.console.db.run(library.installed)
        rows = []
        for prompt_id, prompt in sorted(self.catalog.prompts.items()):
            own = installed.get((prompt_id, center, lang))
            default = installed.get((prompt_id, DEFAULT_CENTER, lang))
            rows.append({"id": prompt_id, "text": prompt.text.get(lang, ""),
                         "own": own, "default": default,
                         "versions": [v for v in versions if v.prompt_id == prompt_id
                                      and v.center == center]})
        return Reply(self.console.page(
            "prompts.html", session, rows=rows, center=center, lang=lang,
            centers=self._centers(session.user), message=message,
            may_record=may_record(session.user)))

    async def audio(self, request, session) -> Reply:
        where = self._where(request, session.user)
        prompt_id = arg(request, "id") or ""
        version = arg(request, "version")
        if where is None or prompt_id not in self.catalog.prompts:
            return self.console.error_page(403, "forbidden", session.lang)
        center, lang = where
        try:
            path = library.export_path(self.config.library_dir, prompt_id, center, lang,
                                       int(version) if version and version.isdigit() else None,
                                       "wav")
        except library.LibraryError:
            return self.console.error_page(404, "not_found", session.lang)
        with open(path, "rb") as f:
            return Reply(f.read(), content_type=b"audio/wav")

    async def upload(self, request, session) -> Reply:
        where = self._where(request, session.user)
        prompt_id = arg(request, "id") or ""
        data = request.args.get(b"file", [b""])[0]
        if where is None or prompt_id not in self.catalog.prompts:
            return self.console.error_page(403, "forbidden", session.lang)
        center, lang = where
        if not data:
            return await self.page(request, session, "请选择音频文件 / choose an audio file")
        self.store.local_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.store.local_dir, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            change = await self.store.install(path, prompt_id, center, lang, "import",
                                              session.user.name)
        except AudioRejected as e:
            return await self.page(request, session, f"音频不可用 / audio refused: {e}")
        finally:
            os.unlink(path)
        await self.console.db.run(audit.append, session.user.name, "prompt.import",
                                  f"prompt:{center}:{lang}:{prompt_id}",
                                  {"version": change.old_version},
                                  {"version": change.new_version},
                                  self.reactor.seconds(), center=_center_or_none(center))
        return redirect("/prompts?" + urlencode({"center": center, "lang": lang}))

    async def rollback(self, request, session) -> Reply:
        where = self._where(request, session.user)
        prompt_id = arg(request, "id") or ""
        version = arg(request, "version")
        if where is None or prompt_id not in self.catalog.prompts:
            return self.console.error_page(403, "forbidden", session.lang)
        center, lang = where
        now = self.reactor.seconds()
        try:
            change = await self.console.db.run(
                library.rollback, self.config.library_dir, prompt_id, center, lang,
                session.user.name, now, int(version) if version and version.isdigit() else None)
        except library.LibraryError as e:
            return await self.page(request, session, str(e))
        await self.store.publish()
        await self.console.db.run(audit.append, session.user.name, "prompt.rollback",
                                  f"prompt:{center}:{lang}:{prompt_id}",
                                  {"version": change.old_version},
                                  {"version": change.new_version}, now,
                                  center=_center_or_none(center))
        return redirect("/prompts?" + urlencode({"center": center, "lang": lang}))


def _center_or_none(center: str) -> str | None:
    return None if center == DEFAULT_CENTER else center

