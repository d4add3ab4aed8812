"""Accounts in the console, for provincial administrators: list, add, unlock, disable.

The first administrator comes from ``hotline console adduser``; the others are made
here. Every change is audited; disabling an account also ends its open sessions.
"""
from __future__ import annotations

from console import accounts, audit
from console.accounts import PROVINCE
from console.tables import ConsoleUser
from console.web import Reply, Route, arg, redirect


def unlock(session, name: str, who: str, now: float) -> None:
    row = session.get(ConsoleUser, name)
    if row is None:
        raise accounts.AccountError(f"no account {name}")
    row.failures, row.locked_until = 0, 0.0
    audit.append(session, who, "account.unlock", f"user:{name}", None, None, now,
                 center=row.center)


def set_disabled(session, name: str, disabled: bool, who: str, now: float) -> None:
    row = session.get(ConsoleUser, name)
    if row is None:
        raise accounts.AccountError(f"no account {name}")
    if row.disabled != disabled:
        audit.append(session, who, "account.disable" if disabled else "account.enable",
                     f"user:{name}", {"disabled": row.disabled}, {"disabled": disabled}, now,
                     center=row.center)
        row.disabled = disabled


def rows(session) -> list[dict]:
    return [{"name": u.name, "role": u.role, "center": u.center, "failures": u.failures,
             "locked_until": u.locked_until, "disabled": u.disabled}
            for u in accounts.listing(session)]


class UserPages:
    def __init__(self, console):
        self.console = console

    def mount(self) -> None:
        only = Route(self.page, allowed=lambda u: u.role == PROVINCE)
        self.console.add_page("/users", only,
                              Route(self.post, allowed=lambda u: u.role == PROVINCE),
                              nav=None)

    async def page(self, request, session, message: str | None = None, code: int = 200):
        listing = await self.console.db.run(rows)
        return Reply(self.console.page(
            "users.html", session, users=listing, message=message,
            now=self.console.clock.seconds(), roles=accounts.ROLES,
            centers=list(self.console.config.centers)), code)

    async def post(self, request, session) -> Reply:
        action, name = arg(request, "action"), arg(request, "name") or ""
        now, who = self.console.clock.seconds(), session.user.name
        try:
            if action == "add":
                await self.console.db.run(accounts.add, name, arg(request, "role") or "",
                                          arg(request, "center") or None,
                                          arg(request, "password") or "", now, who,
                                          list(self.console.config.centers))
            elif action == "unlock":
                await self.console.db.run(unlock, name, who, now)
            elif action in ("disable", "enable"):
                if name == who:
                    raise accounts.AccountError("an administrator cannot disable the own account")
                await self.console.db.run(set_disabled, name, action == "disable", who, now)
                if action == "disable":
                    self.console.sessions.close_user(name)
            else:
                return self.console.error_page(400, "not_found", session.lang)
        except accounts.AccountError as e:
            return await self.page(request, session, str(e), 400)
        return redirect("/users")
