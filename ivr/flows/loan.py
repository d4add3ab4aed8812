"""Loan self-service: 贷款余额, 月还款额 and overdue amounts, the loan named by its last 4 digits."""
from __future__ import annotations

from core_client.interface import AccountNotFound, CoreUnavailable
from ivr import speech
from ivr.flows.context import CallContext, Step
from ivr.flows.identify import require_account


async def loan(ctx: CallContext) -> Step:
    step = await require_account(ctx)
    if step is not None:
        return step
    try:
        ln = await ctx.core.loan(ctx.account.account_no)
    except (CoreUnavailable, AccountNotFound):
        return Step(preamble=("ivr/system-busy",))
    ctx.served += 1
    if ln is None:
        return Step(preamble=("ivr/no-loan",))
    prompts = ["ivr/loan-tail", *speech.digits(ln.loan_no[-4:], ctx.lang).prompts]
    if ln.status == "settled":
        return Step(preamble=(*prompts, "ivr/loan-settled"))
    prompts += ["ivr/loan-balance-is", *speech.amount(ln.balance, ctx.lang).prompts,
                "ivr/monthly-repayment-is", *speech.amount(ln.monthly_repayment, ctx.lang).prompts]
    if ln.overdue_periods > 0:
        prompts += ["ivr/overdue-principal-is",
                    *speech.amount(ln.overdue_principal, ctx.lang).prompts,
                    "ivr/overdue-periods", *speech.count(ln.overdue_periods, ctx.lang).prompts,
                    "unit/qi"]
    else:
        prompts.append("ivr/no-overdue")
    return Step(preamble=tuple(prompts))
