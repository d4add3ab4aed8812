"""The end of a call: the satisfaction survey (1 满意, 2 基本满意, 3 不满意), then goodbye.

Only callers who used a self-service item are asked; the answer is stored in the
call record.
"""
from __future__ import annotations

from ivr.flows.context import CallContext, Step

ANSWERS = {"1": 1, "2": 2, "3": 3}


async def goodbye(ctx: CallContext) -> Step:
    if ctx.served:
        answer = await ctx.collect(ctx.menu.inputs["survey"], lambda d: d in ANSWERS)
        if answer is not None:
            ctx.record.survey = ANSWERS[answer]
    await ctx.say(["ivr/thanks-goodbye"])
    await ctx.session.hangup()
    return Step(end="ivr_handled" if ctx.served else "failed")
