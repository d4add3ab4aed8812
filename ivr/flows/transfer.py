"""Transfer to an agent: within the center's office hours the call leaves AsyncAGI for the
agents' queue extension; outside them the caller hears the hours and goes back."""
from __future__ import annotations

import datetime as dt

from ivr import speech
from ivr.flows.context import CallContext, Step


async def transfer(ctx: CallContext) -> Step:
    office = ctx.center.office_hours
    if not office.contains(ctx.now()):
        hours = ("ivr/agent-hours",
                 *speech.time_of_day(_clock_time(office.start), ctx.lang).prompts, "ivr/to",
                 *speech.time_of_day(_clock_time(office.end), ctx.lang).prompts,
                 "ivr/call-in-hours")
        return Step(preamble=hours, goto=ctx.menu.main)
    await ctx.say(["ivr/transferring"])
    ctx.transferred = True
    await ctx.session.leave(ctx.agent_context, ctx.agent_exten, 1)
    return Step(end="transferred")


def _clock_time(minutes: int) -> dt.time:
    return dt.time(min(minutes // 60, 23), minutes % 60) if minutes < 24 * 60 else dt.time(0, 0)
