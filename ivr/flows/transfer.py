"""Transfer to an agent: within the center's office hours the call leaves AsyncAGI for the
agents' queue extension; outside them the caller hears the hours and goes back to the
menu, or, when sent here by too many failures, hears them and is told goodbye (going
back would loop a silent caller between the menu and the hours for ever)."""
from __future__ import annotations

import datetime as dt

from ivr import speech
from ivr.agents import ABANDONED, UNKNOWN
from ivr.flows.context import CallContext, Step


async def transfer(ctx: CallContext) -> Step:
    office = ctx.center.office_hours
    if not office.contains(ctx.now()):
        hours = ("ivr/agent-hours",
                 *speech.time_of_day(_clock_time(office.start), ctx.lang).prompts, "ivr/to",
                 *speech.time_of_day(_clock_time(office.end), ctx.lang).prompts,
                 "ivr/call-in-hours")
        if ctx.escalated:
            await ctx.say([*hours, "ivr/goodbye"])
            await ctx.session.hangup()
            return Step(end="failed")
        return Step(preamble=hours, goto=ctx.menu.main)
    fate = ctx.agents.watch(ctx.session.uniqueid) if ctx.agents is not None else None
    ctx.transferring = True
    ctx.record.agent = ABANDONED  # a hang-up from here on, before an agent answers
    await ctx.say(["ivr/transferring"])
    await ctx.session.leave(ctx.agent_context, ctx.agent_exten, 1)
    ctx.record.agent = await fate if fate is not None else UNKNOWN
    if ctx.record.agent == ABANDONED:
        return Step(end="abandoned")
    return Step(end="transferred")


def _clock_time(minutes: int) -> dt.time:
    return dt.time(min(minutes // 60, 23), minutes % 60) if minutes < 24 * 60 else dt.time(0, 0)
