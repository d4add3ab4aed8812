"""Registered mobiles of many accounts, asked of the core 64 at a time."""
from __future__ import annotations

from twisted.internet.defer import Deferred, DeferredList

from core_client.interface import AccountNotFound


async def lookup_mobiles(core, accounts: list[str], cache: dict) -> None:
    """Fill ``cache`` with each account's registered mobile (None: no such account)."""
    wanted = sorted(set(accounts) - set(cache))
    for i in range(0, len(wanted), 64):
        chunk = wanted[i:i + 64]
        results = await DeferredList(
            [Deferred.fromCoroutine(core.registered_mobile(a)) for a in chunk],
            consumeErrors=True)
        for account, (ok, value) in zip(chunk, results):
            if ok:
                cache[account] = value
            elif value.check(AccountNotFound):
                cache[account] = None
            else:
                value.raiseException()
