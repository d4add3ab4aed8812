"""The SMS opt-out list per center: who replied TD (or asked at a counter) and gets no alert
or bulk SMS. Numbers are shown masked; adding and removing are audited, masked too."""
from __future__ import annotations

import re
from urllib.parse import urlencode

from sqlalchemy import delete, func, insert, select

from common.masking import mask_mobile
from console import audit
from console.web import Reply, Route, arg, redirect
from sms.outbox.sql import OPTOUT as O

MOBILE = re.compile(r"^1[3-9]\d{9}$")
LIMIT = 200


def listing(session, center: str) -> tuple[int, list[dict]]:
    total = session.scalar(select(func.count()).select_from(O).where(O.c.center == center))
    rows = session.execute(select(O.c.id, O.c.mobile, O.c.created_at).where(O.c.center == center)
                           .order_by(O.c.created_at.desc()).limit(LIMIT)).all()
    return total, [{"id": r.id, "mobile": mask_mobile(r.mobile), "created_at": r.created_at}
                   for r in rows]


def add(session, center: str, mobile: str, who: str, now: float) -> None:
    if session.execute(select(O.c.id).where(O.c.center == center,
                                            O.c.mobile == mobile)).first() is None:
        session.execute(insert(O).values(center=center, mobile=mobile, created_at=now))
        audit.append(session, who, "sms.opt_out", f"optout:{center}:{mask_mobile(mobile)}",
                     None, "opted out", now, center=center)


def remove(session, center: str, row_id: int, who: str, now: float) -> None:
    row = session.execute(select(O.c.mobile).where(O.c.center == center,
                                                   O.c.id == row_id)).first()
    if row is not None:
        session.execute(delete(O).where(O.c.id == row_id))
        audit.append(session, who, "sms.opt_in", f"optout:{center}:{mask_mobile(row.mobile)}",
                     "opted out", None, now, center=center)


class OptOutPages:
    def __init__(self, console):
        self.console = console

    def mount(self) -> None:
        allowed = Route(self.post, allowed=lambda u: u.may_change)
        self.console.add_page("/optout", Route(self.page), allowed, nav="optout")

    async def page(self, request, session, message: str | None = None) -> Reply:
        center = self.console.center_of(request, session.user)
        if center is None:
            return self.console.error_page(403, "forbidden", session.lang)
        total, rows = await self.console.db.run(listing, center)
        return Reply(self.console.page(
            "optout.html", session, center=center, total=total, rows=rows, message=message,
            all_centers=session.user.centers(self.console.config.centers)))

    async def post(self, request, session) -> Reply:
        center = self.console.center_of(request, session.user)
        if center is None:
            return self.console.error_page(403, "forbidden", session.lang)
        now, who = self.console.clock.seconds(), session.user.name
        if arg(request, "remove"):
            row_id = arg(request, "remove") or ""
            if row_id.isdigit():
                await self.console.db.run(remove, center, int(row_id), who, now)
        else:
            mobile = "".join(ch for ch in (arg(request, "mobile") or "") if ch.isdigit())
            if not MOBILE.match(mobile):
                return await self.page(request, session, "手机号格式不正确 / not a mobile number")
            await self.console.db.run(add, center, mobile, who, now)
        return redirect("/optout?" + urlencode({"center": center}))
