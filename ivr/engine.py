"""Runs a center's menu (``ivr.menu``) against one call's AGI session.

The engine is the only place that walks the node graph: menus collect one key
per ``get_data`` (prompts and collection in one command, since DTMF pressed
between AGI commands is lost), actions run a flow from ``ivr.flows``, and a
flow's reading is carried into the next menu's ``get_data`` so the caller can
key the next choice while still hearing it.
``run_call`` wraps a call: the record is opened first and always closed, also
when the caller hangs up mid-prompt (``CallHungUp``) or a flow fails.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from ivr.asterisk.agi import CallHungUp
from ivr.flows import FLOWS
from ivr.flows.context import DIGITS_ALL, CallContext, Step
from ivr.menu import Menu, Node
from ivr.records import CallRecords

Flow = Callable[[CallContext], Awaitable[Step]]


class Engine:
    """One center's menu and the flows its action nodes name."""

    def __init__(self, menu: Menu, flows: Mapping[str, Flow] = FLOWS):
        self.menu, self.flows = menu, flows

    async def run(self, ctx: CallContext, start: str | None = None) -> str:
        """Drive the call from ``start`` (the menu's start node by default) until a flow
        ends it; returns the outcome."""
        menu = self.menu
        node = menu.nodes[start or menu.start]
        preamble: tuple[str, ...] = ()
        history: list[str] = []  # menus entered, for the back key
        while True:
            ctx.node = node
            ctx.record.visit(node.name)
            if node.kind == "menu":
                if ctx.on_menu is not None:
                    ctx.on_menu(node.name)
                if node.name in history:
                    del history[history.index(node.name) + 1:]
                else:
                    history.append(node.name)
                target, preamble = await self._menu(ctx, node, preamble, history)
                if target is None:
                    return await self._escalation_goodbye(ctx)
                node = menu.nodes[target]
                continue
            here = history[-1] if history else menu.main
            if not node.is_open(ctx.now()):
                preamble, node = preamble + node.closed_prompts, menu.nodes[here]
                continue
            if node.kind == "notice":
                await self._notice(ctx, node, preamble)
                preamble, node = (), menu.nodes[node.next]
            elif node.kind == "language":
                ctx.lang = ctx.record.language = node.lang
                await ctx.session.set_variable("CHANNEL(language)", node.lang)
                node = menu.nodes[node.next]
            else:
                if preamble:
                    await ctx.say(preamble)
                step = await self.flows[node.flow](ctx)
                if step.end is not None:
                    return step.end
                preamble = step.preamble
                node = menu.nodes[step.goto or node.next or here]

    async def _menu(self, ctx: CallContext, node: Node, preamble: tuple[str, ...],
                    history: list[str]) -> tuple[str | None, tuple[str, ...]]:
        """One menu until a choice: (next node or None to give up, preamble for it)."""
        menu = self.menu
        prompts = preamble + node.prompts
        failures = 0
        while True:
            digits = await self._ask(ctx, node, prompts)
            if not digits:
                if node.default is not None:
                    return node.default, ()
                failures += 1
                prompts = node.silence_prompts + node.prompts
            else:
                ctx.record.key(node.name, digits)
                if digits == menu.repeat_key:
                    prompts = preamble + node.prompts
                    continue
                if digits == menu.back_key:
                    return (history[-2] if len(history) > 1 else node.name), ()
                if digits == menu.main_key:
                    return menu.main, ()
                target = node.keys.get(digits)
                if target is None:
                    failures += 1
                    prompts = node.invalid_prompts + node.prompts
                elif not menu.nodes[target].is_open(ctx.now()):
                    prompts = menu.nodes[target].closed_prompts + node.prompts
                    continue
                else:
                    ctx.escalated = False
                    return target, ()
            if failures >= node.max_failures:
                ctx.failed = ctx.escalated = True
                return node.on_failures, ()

    async def _ask(self, ctx: CallContext, node: Node, prompts: tuple[str, ...]) -> str:
        result = await ctx.get_data(prompts, node.first_digit_timeout, node.inter_digit_timeout,
                                    node.max_digits)
        return result.digits or ""

    async def _notice(self, ctx: CallContext, node: Node, preamble: tuple[str, ...]) -> None:
        if not node.barge_in:
            await ctx.say(preamble + node.prompts)
            return
        for prompt in preamble + node.prompts:
            if await ctx.stream(prompt, DIGITS_ALL):
                return  # a key skips the rest of the notice

    async def _escalation_goodbye(self, ctx: CallContext) -> str:
        """Too many failures and no escalation node: say goodbye and hang up."""
        await ctx.say(["ivr/goodbye"])
        await ctx.session.hangup()
        return "failed"


def outcome_after_hangup(ctx: CallContext) -> str:
    if ctx.transferring:
        return "abandoned"
    if ctx.served:
        return "ivr_handled"
    return "failed" if ctx.failed else "abandoned"


async def run_call(ctx: CallContext, engine: Engine, records: CallRecords,
                   start: str | None = None) -> str:
    """One whole call (or its rest, from ``start``): open the record, run the menu, always
    close the record."""
    await records.open(ctx.record)
    outcome = "error"
    try:
        outcome = await engine.run(ctx, start)
    except CallHungUp:
        outcome = outcome_after_hangup(ctx)
    finally:
        await records.close(ctx.record, outcome, ctx.served)
    return outcome
