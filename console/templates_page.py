"""SMS templates in the console: one administrator edits, a second reviews and publishes.

A draft is stored with its author; only another administrator of the center (or
a provincial one) may publish or reject it. Publishing changes the running
outbox's ``TemplateSet`` at once, so the next message carries the new text; the
published texts are also re-applied on every rollup tick and at start, so other
daemons and the outbox worker sharing the database follow within seconds.
"""
from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import select

from console import audit
from console.tables import TemplateEdit
from console.web import Reply, Route, arg, redirect
from sms.templates import TemplateError


class ReviewError(ValueError):
    """An edit or publication the review rules refuse."""


def save_draft(session, center: str, name: str, text: str, who: str, now: float,
               current: str) -> None:
    row = session.get(TemplateEdit, (center, name), with_for_update=True)
    if row is None:
        row = TemplateEdit(center=center, name=name)
        session.add(row)
    old = row.draft_text
    row.draft_text, row.draft_by, row.draft_at = text, who, now
    audit.append(session, who, "sms_template.edit", f"template:{center}:{name}",
                 old if old is not None else current, text, now, center=center)


def publish(session, center: str, name: str, who: str, now: float, current: str) -> str:
    """Make the draft the published text; refused to the draft's own author."""
    row = session.get(TemplateEdit, (center, name), with_for_update=True)
    if row is None or row.draft_text is None:
        raise ReviewError("no draft to publish")
    if row.draft_by == who:
        raise ReviewError("a draft must be published by another administrator")
    text = row.draft_text
    audit.append(session, who, "sms_template.publish", f"template:{center}:{name}",
                 row.published_text or current, {"text": text, "edited_by": row.draft_by},
                 now, center=center)
    row.published_text, row.published_by, row.published_at = text, who, now
    row.draft_text = row.draft_by = row.draft_at = None
    return text


def reject(session, center: str, name: str, who: str, now: float) -> None:
    row = session.get(TemplateEdit, (center, name), with_for_update=True)
    if row is None or row.draft_text is None:
        raise ReviewError("no draft to reject")
    audit.append(session, who, "sms_template.reject", f"template:{center}:{name}",
                 {"text": row.draft_text, "edited_by": row.draft_by}, None, now, center=center)
    row.draft_text = row.draft_by = row.draft_at = None


def edits(session, centers: list[str]) -> dict[tuple[str, str], TemplateEdit]:
    return {(r.center, r.name): r for r in session.scalars(
        select(TemplateEdit).where(TemplateEdit.center.in_(centers)))}


def published(session) -> list[tuple[str, str, str]]:
    return [(r.center, r.name, r.published_text) for r in session.scalars(
        select(TemplateEdit).where(TemplateEdit.published_text.is_not(None)))]


def apply_published(templates, rows) -> None:
    """Put published texts into a running TemplateSet (a text it refuses is left out)."""
    for center, name, text in rows:
        if center in templates.by_center and name in templates.by_center[center]:
            try:
                templates.replace_text(center, name, text)
            except TemplateError:
                continue


class TemplatePages:
    def __init__(self, console, templates):
        self.console, self.templates = console, templates

    def mount(self) -> None:
        c = self.console
        c.add_page("/templates", Route(self.page), nav="templates")
        for action in ("edit", "publish", "reject"):
            c.add_page(f"/templates/{action}", Route(self.page),
                       Route(getattr(self, action), allowed=lambda u: u.may_change))

    async def page(self, request, session, message: str | None = None) -> Reply:
        center = self.console.center_of(request, session.user)
        if center is None:
            return self.console.error_page(403, "forbidden", session.lang)
        rows = await self.console.db.run(edits, [center])
        items = [{"name": n, "klass": self.templates.get(center, n).klass,
                  "text": self.templates.get(center, n).text, "edit": rows.get((center, n))}
                 for n in self.templates.names(center)]
        return Reply(self.console.page(
            "sms_templates.html", session, items=items, center=center, message=message,
            all_centers=session.user.centers(self.console.config.centers)))

    def _target(self, request, user):
        center = self.console.center_of(request, user)
        name = arg(request, "name") or ""
        if center is None or name not in self.templates.names(center):
            return None
        return center, name

    async def edit(self, request, session) -> Reply:
        target = self._target(request, session.user)
        if target is None:
            return self.console.error_page(403, "forbidden", session.lang)
        center, name = target
        text = (arg(request, "text") or "").strip()
        try:  # the check publication makes: refuse a bad draft now
            self.templates.with_text(center, name, text)
        except TemplateError as e:
            return await self.page(request, session, str(e))
        await self.console.db.run(save_draft, center, name, text, session.user.name,
                                  self.console.clock.seconds(),
                                  self.templates.get(center, name).text)
        return redirect("/templates?" + urlencode({"center": center}))

    async def publish(self, request, session) -> Reply:
        target = self._target(request, session.user)
        if target is None:
            return self.console.error_page(403, "forbidden", session.lang)
        center, name = target
        try:
            text = await self.console.db.run(publish, center, name, session.user.name,
                                             self.console.clock.seconds(),
                                             self.templates.get(center, name).text)
        except ReviewError as e:
            return await self.page(request, session, str(e))
        self.templates.replace_text(center, name, text)
        return redirect("/templates?" + urlencode({"center": center}))

    async def reject(self, request, session) -> Reply:
        target = self._target(request, session.user)
        if target is None:
            return self.console.error_page(403, "forbidden", session.lang)
        try:
            await self.console.db.run(reject, *target, session.user.name,
                                      self.console.clock.seconds())
        except ReviewError as e:
            return await self.page(request, session, str(e))
        return redirect("/templates?" + urlencode({"center": target[0]}))
