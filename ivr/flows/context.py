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
# After an input reached its length: how long to listen for keys typed beyond it (the
# closing #, or the rest of a too-long entry) so they do not spill into the next prompt.
FLUSH_MS = 1500
FLUSH_DIGITS = 32  # keys one flush Read takes


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
    # Prompt id and language to the file Asterisk plays (prompts.installed.InstalledPrompts);
    # the identity by default, so tests see prompt ids.
    resolve: Callable[[str, str], str] = lambda prompt_id, lang: prompt_id
    lang: str = "zh"
    account: Account | None = None
    served: int = 0  # self-service items completed (balance read, password changed, ...)
    failed: bool = False  # locked out, or gave up after too many failures
    # On the way to a node's escalation after too many failures (cleared by the next
    # menu choice): out of hours that ends the call instead of looping back to a menu.
    escalated: bool = False
    # Handed to the agents' queue: a hang-up from the "transferring" notice on, before an
    # agent answers, is ``abandoned``.
    transferring: bool = False
    agents: object = None  # ivr.agents.AgentAnswers, or None: the fate is not watched
    node: object = None  # the ivr.menu.Node being run
    # Told each menu the call enters (ivr.asterisk.adoption keeps it on the channel, so a
    # daemon adopting the call replays that menu); None: nobody needs to know.
    on_menu: Callable[[str], None] | None = None
    # Told when the core accepted the caller (ivr.identities keeps who the caller is, so a
    # daemon adopting the call need not ask again); None: nobody needs to know.
    on_identified: Callable[[Account], object] | None = None
    # An adopted call: the look for the identity its first daemon kept (ivr.identities sets
    # ``account`` when found); identification waits for it before asking the caller.
    restoring: Awaitable[object] | None = None

    @property
    def tz(self) -> dt.tzinfo:
        """The center's zone: office hours and spoken times never follow the host's."""
        return ZoneInfo(self.center.timezone)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), self.tz)

    def local_time(self, when: dt.datetime) -> dt.datetime:
        """``when`` in the center's zone; a naive time is taken as already local (a core
        answering in its own local time), never as the host's."""
        return when.replace(tzinfo=self.tz) if when.tzinfo is None else when.astimezone(self.tz)

    async def collect(self, spec: Input, valid: Callable[[str], bool],
                      preamble: tuple[str, ...] = ()) -> str | None:
        """Keyed input per ``spec``: silence and invalid entries re-prompt with their own
        wording; after ``spec.max_failures`` failures give up with None.

        Collection stops at ``spec.max_digits``; keys typed beyond (a closing #, or the
        rest of an over-long entry) are flushed, and make the entry invalid if digits."""
        prompts = preamble + spec.prompts
        for _ in range(spec.max_failures):
            result = await self.get_data(prompts, spec.first_digit_timeout,
                                         spec.inter_digit_timeout, spec.max_digits)
            digits = result.digits
            if len(digits) >= spec.max_digits:
                digits += await self._flush()
            if not digits:
                prompts = spec.silence_prompts + spec.prompts
            elif valid(digits):
                return digits
            else:
                prompts = spec.invalid_prompts + spec.prompts
        return None

    async def _flush(self) -> str:
        """Keys still coming after a full entry, up to a # or a pause of FLUSH_MS: one Read
        (another only if the caller filled it), so the re-prompt follows that pause."""
        extra = ""
        while True:
            more = (await self.session.get_data([], FLUSH_MS, FLUSH_DIGITS, FLUSH_MS)).digits
            extra += more
            if len(more) < FLUSH_DIGITS:
                return extra

    def give_up(self, preamble: tuple[str, ...] = ()) -> Step:
        """Too many failures in a flow: on to the node's escalation (agent or goodbye)."""
        self.failed = self.escalated = True
        target = getattr(self.node, "on_failures", None) or self.menu.main
        return Step(preamble=preamble, goto=target)

    async def say(self, prompts: tuple[str, ...] | list[str]) -> None:
        """Prompts that must be heard whole (no barge-in), as one Playback."""
        await self.session.play([self.resolve(p, self.lang) for p in prompts])

    async def get_data(self, prompts: tuple[str, ...] | list[str], first_digit_timeout: float,
                       inter_digit_timeout: float, max_digits: int):
        """Say ``prompts`` and collect keys, with barge-in over all of them: one Read,
        however long the reading before the menu (the caller who already knows the menu
        keys the next choice while still hearing a balance)."""
        return await self.session.get_data([self.resolve(p, self.lang) for p in prompts],
                                           int(first_digit_timeout * 1000), max_digits,
                                           int(inter_digit_timeout * 1000))

    async def stream(self, prompt: str, escape_digits: str) -> str | None:
        return await self.session.stream_file(self.resolve(prompt, self.lang), escape_digits)
