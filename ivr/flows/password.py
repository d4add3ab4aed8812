"""Change the 6-digit query password: current, new, new again (they must match).

Each step has its own wording: the caller has just keyed the password once to
identify, so "enter your current password" must not sound like a repeat of that."""
from __future__ import annotations

from core_client.interface import AccountLocked, CoreUnavailable, WrongPassword
from ivr import speech
from ivr.flows.context import CallContext, Step
from ivr.flows.identify import is_password, locked, require_account


async def change_password(ctx: CallContext) -> Step:
    step = await require_account(ctx)
    if step is not None:
        return step
    inputs = ctx.menu.inputs
    old = await ctx.collect(inputs["current_password"], is_password)
    if old is None:
        return ctx.give_up()
    preamble: tuple[str, ...] = ()
    for _ in range(inputs["confirm_password"].max_failures):
        new = await ctx.collect(inputs["new_password"], is_password, preamble)
        if new is None:
            return ctx.give_up()
        again = await ctx.collect(inputs["confirm_password"], is_password)
        if again is None:
            return ctx.give_up()
        if again == new:
            break
        preamble = ("ivr/passwords-differ",)
    else:
        return ctx.give_up(("ivr/passwords-differ", "ivr/password-not-changed"))
    try:
        await ctx.core.change_password(ctx.account.account_no, old, new)
    except WrongPassword as e:
        if e.attempts_left <= 0:
            return await locked(ctx, None)
        return Step(preamble=("ivr/password-wrong", "ivr/attempts-left",
                              *speech.count(e.attempts_left, ctx.lang).prompts, "ivr/times",
                              "ivr/password-not-changed"))
    except AccountLocked as e:
        return await locked(ctx, e)
    except CoreUnavailable:
        return Step(preamble=("ivr/system-busy", "ivr/password-not-changed"))
    ctx.served += 1
    await ctx.say(["ivr/password-changed"])
    return Step()
