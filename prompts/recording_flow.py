"""The administrators' record-by-phone flow, over one AGI session.

The dialplan sends the administrators' extension to AsyncAGI with arguments
``[instance, "admin", center]``. The call goes:

1. staff number and PIN (three tries; a number is locked after
   ``pin_max_failures`` wrong PINs, a caller's line after ``pin_caller_failures``
   over all numbers, see ``prompts.staff``);
2. the prompt's catalog number (``hotline prompts list``), ``*`` to finish;
   with two languages enabled, 1 Mandarin / 2 English;
3. the current version plays, then "record after the beep": ``#`` ends, the
   recording stops at ``max_seconds`` or after ``silence_seconds`` of silence;
4. the recording plays back: 1 accept, 2 record again, 3 cancel. Accepted audio
   is processed like an import and installed as a new version for the
   center, audited with the staff number as ``who``.

A hang-up anywhere (the session raises ``ivr.asterisk.agi.CallHungUp``) propagates to
the caller of this flow after the raw recording is deleted; nothing is
installed unless 1 was pressed and the audio passed the checks.
"""
from __future__ import annotations

from typing import Any, Protocol

from twisted.logger import Logger

from prompts.audio import AudioRejected
from prompts.catalog import LANGUAGES, Catalog, Prompt
from prompts.library import Change
from prompts.staff import Login
from prompts.transfer import TransferError

log = Logger()

LOGIN_TRIES = 3
CHOICE_TRIES = 3
RECORD_ROUNDS = 5
DIGIT_TIMEOUT_MS = 6000


class Store(Protocol):
    """What the flow needs from the library (``prompts.service.PromptStore``)."""

    async def fresh(self) -> None: ...
    def path(self, center: str, lang: str, prompt_id: str) -> str: ...
    def exists(self, center: str, lang: str, prompt_id: str) -> bool: ...
    async def new_recording(self) -> str: ...
    async def login(self, number: str, pin: str, caller: str) -> Login: ...
    async def fetch(self, remote: str) -> str: ...
    async def install(self, path: str, prompt_id: str, center: str, lang: str, source: str,
                      who: str) -> Change: ...
    async def discard(self, remote: str) -> None: ...


class _Call:
    """The session plus what every step needs: center, language, prompt paths."""

    def __init__(self, session: Any, store: Store, catalog: Catalog, center: str,
                 languages: tuple[str, ...], max_seconds: float, silence_seconds: float):
        self.session, self.store, self.catalog = session, store, catalog
        self.center = center
        self.lang = languages[0]  # the center's first language speaks to the administrator
        self.languages = languages
        self.max_seconds, self.silence_seconds = max_seconds, silence_seconds

    def paths(self, *ids: str) -> list[str]:
        return [self.store.path(self.center, self.lang, i) for i in ids]

    async def play(self, *ids: str) -> None:
        await self.session.play(self.paths(*ids))

    async def ask(self, prompt_id: str, max_digits: int) -> str:
        result = await self.session.get_data(self.paths(prompt_id), DIGIT_TIMEOUT_MS,
                                             max_digits)
        return result.digits or ""


async def record_by_phone(session: Any, store: Store, catalog: Catalog, center: str,
                          languages: tuple[str, ...] = LANGUAGES, max_seconds: float = 120.0,
                          silence_seconds: float = 4.0) -> list[Change]:
    """Run one administrator's call; returns the versions installed during it.

    Recordings are installed for ``center``; ``languages`` are the center's (the first one is spoken to the administrator,
    and with two a recording asks which one it is for).
    """
    call = _Call(session, store, catalog, center, languages, max_seconds, silence_seconds)
    await store.fresh()
    await call.play("admin/welcome")
    staff = await _login(call)
    changes: list[Change] = []
    if staff is not None:
        try:
            while (prompt := await _choose_prompt(call)) is not None:
                lang = await _choose_language(call)
                if lang is None:
                    continue
                change = await _record(call, prompt, lang, staff)
                if change is not None:
                    changes.append(change)
        except TransferError as e:
            log.error("prompt recording: file transfer failed: {error}", error=str(e))
            await call.play("common/apology")
    await call.play("common/goodbye")
    await session.hangup()
    return changes


async def _login(call: _Call) -> str | None:
    for _ in range(LOGIN_TRIES):
        number = await call.ask("admin/enter_staff_number", 8)
        if not number:
            continue
        pin = await call.ask("admin/enter_pin", 8)
        result = await call.store.login(number, pin, call.session.caller_id)
        if result is Login.OK:
            log.info("prompt recording: staff {staff} logged in", staff=number)
            return number
        if result is Login.LOCKED:
            log.warn("prompt recording: staff {staff} is locked", staff=number[:8])
            await call.play("admin/locked")
            return None
        log.warn("prompt recording: failed login for staff {staff}", staff=number[:8])
        await call.play("admin/login_failed")
    return None


async def _choose_prompt(call: _Call) -> Prompt | None:
    for _ in range(CHOICE_TRIES):
        digits = await call.ask("admin/enter_prompt_number", call.catalog.number_width)
        if digits.startswith("*"):
            return None
        if not digits:
            continue
        prompt = call.catalog.by_number(digits)
        if prompt is not None:
            return prompt
        await call.play("admin/invalid_prompt_number")
    return None


async def _choose_language(call: _Call) -> str | None:
    if len(call.languages) == 1:
        return call.languages[0]
    for _ in range(CHOICE_TRIES):
        digits = await call.ask("admin/choose_language", 1)
        if digits in ("1", "2"):
            return ("zh", "en")[int(digits) - 1]
        if digits:
            await call.play("common/invalid_key")
    return None


async def _record(call: _Call, prompt: Prompt, lang: str, staff: str) -> Change | None:
    """Hear the current version, then record / review until accepted or cancelled."""
    await call.store.fresh()  # a version installed since (another call, the console)
    if call.store.exists(call.center, lang, prompt.id):
        await call.session.play(call.paths("admin/current_version")
                                + [call.store.path(call.center, lang, prompt.id)])
    else:
        await call.play("admin/no_current_version")
    for _ in range(RECORD_ROUNDS):
        remote = await call.store.new_recording()
        try:
            await call.play("admin/record_after_beep")
            await call.session.record_file(remote, "wav", "#", int(call.max_seconds * 1000),
                                           beep=True, silence_s=int(call.silence_seconds))
            choice = await _review(call, remote)
            if choice == "2":
                continue
            if choice != "1":
                await call.play("admin/cancelled")
                return None
            local = await call.store.fetch(remote)
            try:
                change = await call.store.install(local, prompt.id, call.center, lang, "phone",
                                                  staff)
            except AudioRejected as e:
                log.info("prompt recording refused: {reason}", reason=e.reason)
                await call.play(f"admin/rejected_{e.reason}")
                continue
            await call.play("admin/saved")
            return change
        finally:
            await call.store.discard(remote)
    await call.play("admin/cancelled")
    return None


async def _review(call: _Call, remote: str) -> str | None:
    await call.session.play(call.paths("admin/your_recording") + [remote])
    for _ in range(CHOICE_TRIES):
        digits = await call.ask("admin/review_options", 1)
        if digits in ("1", "2", "3"):
            return digits
        if digits:
            await call.play("common/invalid_key")
    return None
