"""What every flow of one call shares: the AGI session, the center's core, the record."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from common.config import CenterConfig
from core_client.interface import Account, CoreClient
from ivr.menu import Input, Menu
from ivr.records import CallRecord

Notifier = Callable[[str, str], Awaitable[None]]

DIGITS_ALL = "0123456789*#"
# Room for the '&'-joined files of one Playback or Read within an AMI "Command:" line
# (Asterisk's manager input buffer is 1024 bytes), with the command's other words.
PROMPT_CHARS = 900
# How long a leading part of a long prompt list waits for a key before the next part.
PART_GAP_MS = 50


def chunk_files(files: list[str], limit: int) -> list[list[str]]:
    """Consecutive files grouped so each group, '&'-joined, stays within ``limit`` chars."""
    chunks: list[list[str]] = []
    size = 0
    for f in files:
        if not chunks or size + 1 + len(f) > limit:
            chunks.append([])
            size = -1
        chunks[-1].append(f)
        size += 1 + len(f)
    return chunks


@dataclass(frozen=True)
class Step:
    """What a flow hands back to the engine.

    ``preamble`` is said in the same GET DATA as the next menu's prompts, so a
    caller can key the next choice while still hearing a balance (DTMF between
    AGI commands is lost). ``goto`` overrides the node's ``next``; ``end`` ends
    the call with that outcome (the flow has hung up or left the AGI).
    """

    preamble: tuple[str, ...] = ()
    goto: str | None = None
    end: str | None = None


@dataclass
class CallContext:
    session: object  # ivr.asterisk.agi.AgiSession or a test double with the same coroutines
    center: CenterConfig
    core: CoreClient
    menu: Menu
    clock: object  # IReactorTime
    record: CallRecord
    notifier: Notifier | None = None
    agent_context: str = "hotline-queue"
    agent_exten: str = "s"
    # Prompt id and language to the file Asterisk plays (prompts.layout.prompt_path);
    # the identity by default, so tests see prompt ids.
    resolve: Callable[[str, str], str] = lambda prompt_id, lang: prompt_id
    lang: str = "zh"
    account: Account | None = None
    served: int = 0  # self-service items completed (balance read, password changed, ...)
    failed: bool = False  # locked out, or gave up after too many failures
    transferred: bool = False
    node: object = None  # the ivr.menu.Node being run

    @property
    def tz(self) -> dt.tzinfo:
        """The center's zone: office hours and spoken times never follow the host's."""
        return ZoneInfo(self.center.timezone)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), self.tz)

    async def collect(self, spec: Input, valid: Callable[[str], bool],
                      preamble: tuple[str, ...] = ()) -> str | None:
        """Keyed input per ``spec``: silence and invalid entries re-prompt with their own
        wording; after ``spec.max_failures`` failures give up with None."""
        prompts = preamble + spec.prompts
        for _ in range(spec.max_failures):
            result = await self.get_data(prompts, spec.first_digit_timeout,
                                         spec.inter_digit_timeout, spec.max_digits)
            if not result.digits:
                prompts = spec.silence_prompts + spec.prompts
            elif valid(result.digits):
                return result.digits
            else:
                prompts = spec.invalid_prompts + spec.prompts
        return None

    def give_up(self, preamble: tuple[str, ...] = ()) -> Step:
        """Too many failures in a flow: on to the node's escalation (agent or goodbye)."""
        self.failed = True
        target = getattr(self.node, "on_failures", None) or self.menu.main
        return Step(preamble=preamble, goto=target)

    async def say(self, prompts: tuple[str, ...] | list[str]) -> None:
        """Prompts that must be heard whole (no barge-in)."""
        await self._play([self.resolve(p, self.lang) for p in prompts])

    async def _play(self, files: list[str]) -> None:
        """One Playback per run of files that fits an AMI line, so a long reading (three
        deposits) is split rather than refused."""
        for chunk in chunk_files(files, PROMPT_CHARS):
            await self.session.play(chunk)

    async def get_data(self, prompts: tuple[str, ...] | list[str], first_digit_timeout: float,
                       inter_digit_timeout: float, max_digits: int):
        """Say ``prompts`` and collect keys, with barge-in over the prompts.

        A prompt list too long for one AMI line (Asterisk's manager input buffer is
        1024 bytes) is cut into parts, each its own Read with barge-in that waits
        only a moment after its last file: a key pressed during any part (the caller
        already knows the menu while hearing a balance) ends the reading and is the
        answer; only the last part waits the full first-digit timeout.
        """
        *before, last = chunk_files([self.resolve(p, self.lang) for p in prompts],
                                    PROMPT_CHARS)
        inter_digit_ms = int(inter_digit_timeout * 1000)
        for chunk in before:
            early = await self.session.get_data(chunk, PART_GAP_MS, max_digits, inter_digit_ms)
            if early.digits:
                return early
        return await self.session.get_data(last, int(first_digit_timeout * 1000), max_digits,
                                           inter_digit_ms)

    async def stream(self, prompt: str, escape_digits: str) -> str | None:
        return await self.session.stream_file(self.resolve(prompt, self.lang), escape_digits)
