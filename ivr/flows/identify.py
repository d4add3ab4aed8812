"""Who is calling: account number or 18-character ID number, then the 6-digit query password.

The ID's check digit is verified here, so a mistyped number is re-asked at once
instead of costing a core round trip. Lockout is the core's: it raises
WrongPassword(attempts_left) or AccountLocked(until) and this flow only tells
the caller. A core link that refuses our signatures (wrong key, clock skew, an
answer not from the core) cannot serve this call at all: the caller hears an
apology and goes to an agent, with one log line. Nothing keyed here is logged or
recorded; in a cluster the account the core found is kept while the call lives
(``on_identified``, ``ivr.identities``), so that a daemon adopting the call does not ask again.
"""
from __future__ import annotations

from twisted.logger import Logger

from core_client import idnumber
from core_client.interface import (
    AccountLocked,
    AccountNotFound,
    CoreAuthFailed,
    CoreUnavailable,
    InvalidIdNumber,
    WrongPassword,
)
from ivr import speech
from ivr.flows.context import CallContext, Step
from ivr.flows.transfer import transfer

log = Logger(namespace="hotline.ivr.identify")


def plausible(keyed: str) -> bool:
    """An 18-character ID (``*`` for X) with a valid check digit, or a 6-17 digit account."""
    if len(keyed) == 18:
        return idnumber.is_valid(idnumber.normalize(keyed))
    return 6 <= len(keyed) <= 17 and keyed.isdigit()


def is_password(keyed: str) -> bool:
    return len(keyed) == 6 and keyed.isdigit()


async def require_account(ctx: CallContext) -> Step | None:
    """Identify the caller unless already done (also by the daemon that drove the call
    before this one adopted it); a Step to leave with when that fails."""
    if ctx.restoring is not None:
        restoring, ctx.restoring = ctx.restoring, None
        await restoring
    if ctx.account is not None:
        return None
    spec = ctx.menu.inputs["id"]
    preamble: tuple[str, ...] = ()
    for _ in range(spec.max_failures):
        keyed = await ctx.collect(spec, plausible, preamble)
        if keyed is None:
            return ctx.give_up()
        try:
            if len(keyed) == 18:
                account = await ctx.core.find_account(id_number=idnumber.normalize(keyed))
            else:
                account = await ctx.core.find_account(account_no=keyed)
        except (AccountNotFound, InvalidIdNumber):
            preamble = ("ivr/account-not-found",)
            continue
        except CoreUnavailable:
            return Step(preamble=("ivr/system-busy",), goto=ctx.menu.main)
        except CoreAuthFailed as e:
            return await _core_refused(ctx, e)
        step = await _password(ctx, account.account_no)
        if step is None:
            ctx.account = account
            ctx.record.identified = True
            if ctx.on_identified is not None:
                ctx.on_identified(account)
        return step
    return ctx.give_up(("ivr/account-not-found",))


async def _password(ctx: CallContext, account_no: str) -> Step | None:
    spec = ctx.menu.inputs["password"]
    preamble: tuple[str, ...] = ()
    while True:
        password = await ctx.collect(spec, is_password, preamble)
        if password is None:
            return ctx.give_up()
        try:
            await ctx.core.verify_password(account_no, password)
            return None
        except WrongPassword as e:
            if e.attempts_left <= 0:
                return await locked(ctx, None)
            preamble = ("ivr/password-wrong", "ivr/attempts-left",
                        *speech.count(e.attempts_left, ctx.lang).prompts, "ivr/times")
        except AccountLocked as e:
            return await locked(ctx, e)
        except CoreUnavailable:
            return Step(preamble=("ivr/system-busy",), goto=ctx.menu.main)
        except CoreAuthFailed as e:
            return await _core_refused(ctx, e)


async def _core_refused(ctx: CallContext, error: CoreAuthFailed) -> Step:
    """Apologise and hand the caller to an agent; say once in the log what is wrong."""
    log.error("center {center}: core link refused, caller sent to an agent: {why}",
              center=ctx.center.code, why=str(error))
    ctx.failed = True
    await ctx.say(["ivr/system-busy"])
    return await transfer(ctx)


async def locked(ctx: CallContext, error: AccountLocked | None) -> Step:
    """Tell the caller self-service is locked (and until when), as a notice that must be heard."""
    ctx.failed = True
    prompts = ["ivr/account-locked"]
    if error is not None:
        until = ctx.local_time(error.until)
        prompts += ["ivr/locked-until", *speech.date(until.date(), ctx.lang).prompts,
                    *speech.time_of_day(until.time(), ctx.lang).prompts]
    prompts.append("ivr/try-later")
    await ctx.say(prompts)
    return Step(goto=ctx.menu.main)
