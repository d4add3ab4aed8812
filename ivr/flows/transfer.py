"""Transfer to an agent: within the center's office hours the call leaves AsyncAGI for the
agents' queue extension; outside them the caller hears the hours and goes back."""
from __future__ import annotations

import datetime as dt

from ivr import speech
from ivr.flows.context import CallContext, Step


def in_office_hours(ctx: CallContext) -> bool:
    now = ctx.now()
    start, end = ctx.center.office_hours
    minute = now.hour * 60 + now.minute
    in_window = start <= minute < end if start <= end else (minute >= start or minute < end)
    return now.isoweekday() in ctx.center.office_days and in_window


async def transfer(ctx: CallContext) -> Step:
    if not in_office_hours(ctx):
        start, end = ctx.center.office_hours
        hours = ("ivr/agent-hours",
                 *speech.time_of_day(_clock_time(start), ctx.lang).prompts, "ivr/to",
                 *speech.time_of_day(_clock_time(end), ctx.lang).prompts, "ivr/call-in-hours")
        return Step(preamble=hours, goto=ctx.menu.main)
    await ctx.say(["ivr/transferring"])
    ctx.transferred = True
    await ctx.session.leave(ctx.agent_context, ctx.agent_exten, 1)
    return Step(end="transferred")


def _clock_time(minutes: int) -> dt.time:
    return dt.time(min(minutes // 60, 23), minutes % 60) if minutes < 24 * 60 else dt.time(0, 0)
