"""Searching call records and SMS messages, with numbers masked.

Call records keep only masked callers. SMS destinations are shown masked
(138****8000); a provincial administrator may ask for the full numbers of one
result page, and every such view is written to the audit log with what was asked.
The message text is masked too (common.masking), and each message shows its parts
with their carrier ids, states and error codes.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from common.masking import mask_mobile, mask_text
from console import audit
from console.web import Reply, Route, arg
from ivr.tables import IvrCall
from sms.outbox.sql import M, P

LIMIT = 100


def find_calls(session, centers, since, until, outcome) -> list[dict]:
    q = (select(IvrCall).where(IvrCall.center.in_(centers), IvrCall.started_at >= since,
                               IvrCall.started_at < until)
         .order_by(IvrCall.started_at.desc()).limit(LIMIT))
    if outcome:
        q = q.where(IvrCall.outcome == outcome)
    return [{"id": r.id, "center": r.center, "caller": r.caller, "started_at": r.started_at,
             "seconds": (r.ended_at - r.started_at) if r.ended_at else None,
             "outcome": r.outcome, "path": r.path, "survey": r.survey}
            for r in session.scalars(q)]


def find_messages(session, centers, since, until, mobile, template) -> list[dict]:
    q = (select(M).where(M.c.center.in_(centers), M.c.created_at >= since,
                         M.c.created_at < until)
         .order_by(M.c.created_at.desc()).limit(LIMIT))
    if mobile:
        q = q.where(M.c.destination == mobile)
    if template:
        q = q.where(M.c.template == template)
    messages = [dict(r._mapping) for r in session.execute(q)]
    ids = [m["id"] for m in messages]
    parts: dict[int, list] = {}
    if ids:
        for p in session.execute(select(P.c.message_id, P.c.seq, P.c.state, P.c.smsc,
                                        P.c.smpp_id, P.c.error_code, P.c.submitted_at,
                                        P.c.done_at).where(P.c.message_id.in_(ids))
                                 .order_by(P.c.message_id, P.c.seq)):
            parts.setdefault(p.message_id, []).append(dict(p._mapping))
    return [{"id": m["id"], "center": m["center"], "template": m["template"],
             "destination": m["destination"], "text": m["text"], "state": m["state"],
             "smsc": m["smsc"], "error": m["error"], "created_at": m["created_at"],
             "final_at": m["final_at"], "parts": parts.get(m["id"], [])} for m in messages]


class SearchPages:
    def __init__(self, console):
        self.console = console

    def mount(self) -> None:
        self.console.add_page("/calls", Route(self.calls), nav="calls")
        self.console.add_page("/sms", Route(self.sms), nav="sms_search")

    def _window(self, request):
        zone = ZoneInfo(self.console.menus.zone)
        today = dt.datetime.fromtimestamp(self.console.clock.seconds(), zone).date()
        first = _date(arg(request, "first")) or today
        last = _date(arg(request, "last")) or today
        since = dt.datetime.combine(first, dt.time(), zone).timestamp()
        until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).timestamp()
        return first, last, since, until

    def _centers(self, request, user):
        mine = user.centers(self.console.config.centers)
        asked = arg(request, "center")
        if not asked:
            return mine
        return [asked] if asked in mine else None

    async def calls(self, request, session) -> Reply:
        centers = self._centers(request, session.user)
        if centers is None:
            return self.console.error_page(403, "forbidden", session.lang)
        first, last, since, until = self._window(request)
        rows = await self.console.db.run(find_calls, centers, since, until,
                                         arg(request, "outcome") or "")
        return Reply(self.console.page("calls.html", session, rows=rows, first=first,
                                       last=last, center=arg(request, "center") or "",
                                       all_centers=session.user.centers(
                                           self.console.config.centers)))

    async def sms(self, request, session) -> Reply:
        centers = self._centers(request, session.user)
        if centers is None:
            return self.console.error_page(403, "forbidden", session.lang)
        first, last, since, until = self._window(request)
        mobile = "".join(ch for ch in (arg(request, "mobile") or "") if ch.isdigit())
        template = arg(request, "template") or ""
        full = arg(request, "full") == "1" and session.user.may_see_full_numbers
        rows = await self.console.db.run(find_messages, centers, since, until, mobile, template)
        if full and rows:
            await self.console.db.run(
                audit.append, session.user.name, "sms.view_full_numbers",
                f"sms:{rows[-1]['id']}..{rows[0]['id']}", None,
                {"messages": [r["id"] for r in rows], "first": first.isoformat(),
                 "last": last.isoformat(), "template": template,
                 "mobile": mask_mobile(mobile) if mobile else ""},
                self.console.clock.seconds(), center=centers[0] if len(centers) == 1 else None)
        for r in rows:
            if not full:
                r["destination"] = mask_mobile(r["destination"])
                r["text"] = mask_text(r["text"])
        return Reply(self.console.page(
            "sms.html", session, rows=rows, first=first, last=last, full=full,
            center=arg(request, "center") or "", template=template,
            mobile=mask_mobile(mobile) if mobile and not full else mobile,
            all_centers=session.user.centers(self.console.config.centers)))


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
