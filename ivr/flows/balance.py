"""Deposit self-service: balance (余额, 月缴存额, 缴至年月, status) and the last 3 deposits.

Readings are returned as a preamble so they are spoken in the same GET DATA as
the next menu: the caller can key the next choice while still listening.
"""
from __future__ import annotations

from core_client.interface import AccountNotFound, CoreUnavailable
from ivr import speech
from ivr.flows.context import CallContext, Step
from ivr.flows.identify import require_account

STATUS_PROMPTS = {"normal": "ivr/status-normal", "sealed": "ivr/status-sealed",
                  "closed": "ivr/status-closed"}


async def balance(ctx: CallContext) -> Step:
    step = await require_account(ctx)
    if step is not None:
        return step
    try:
        b = await ctx.core.balance(ctx.account.account_no)
    except (CoreUnavailable, AccountNotFound):
        return Step(preamble=("ivr/system-busy",))
    ctx.served += 1
    return Step(preamble=(
        "ivr/balance-is", *speech.amount(b.balance, ctx.lang).prompts,
        "ivr/monthly-deposit-is", *speech.amount(b.monthly_deposit, ctx.lang).prompts,
        "ivr/paid-up-to", *speech.month(b.paid_up_to, ctx.lang).prompts,
        "ivr/status-is", STATUS_PROMPTS.get(b.status, "ivr/status-other"),
    ))


async def deposits(ctx: CallContext) -> Step:
    step = await require_account(ctx)
    if step is not None:
        return step
    try:
        details = await ctx.core.recent_details(ctx.account.account_no, 3, ("deposit",))
    except (CoreUnavailable, AccountNotFound):
        return Step(preamble=("ivr/system-busy",))
    ctx.served += 1
    if not details:
        return Step(preamble=("ivr/no-deposits",))
    prompts: list[str] = ["ivr/recent-deposits"]
    for d in details:
        prompts += [*speech.date(d.date, ctx.lang).prompts, "ivr/deposit-amount",
                    *speech.amount(d.amount, ctx.lang).prompts]
    return Step(preamble=tuple(prompts))
