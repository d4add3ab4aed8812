""""Send my balance by SMS": the SMS room's ``notify_balance(center, account_no)`` seam.

The notifier queues the message in the SMS outbox for the account's registered
mobile. It raises a ``CoreError`` (e.g. CoreUnavailable) when it cannot; with no
notifier wired (SMS disabled) the caller is told the service is unavailable.
"""
from __future__ import annotations

from core_client.interface import CoreError
from ivr.flows.context import CallContext, Step
from ivr.flows.identify import require_account


async def sms_balance(ctx: CallContext) -> Step:
    if ctx.notifier is None:
        return Step(preamble=("ivr/sms-unavailable",))
    step = await require_account(ctx)
    if step is not None:
        return step
    try:
        await ctx.notifier(ctx.center.code, ctx.account.account_no)
    except CoreError:
        return Step(preamble=("ivr/sms-unavailable",))
    ctx.served += 1
    return Step(preamble=("ivr/sms-sent",))
