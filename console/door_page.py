"""The SMS door's clients in the console: list, add, edit, disable and enable.

The door's own functions store and judge every change (``sms.door.clients``: the same
``validate`` and ``door_audit`` rows as ``hotline door client``); the console adds its
hash-chained audit entry in the same transaction. A secret is never shown or typed here:
the page names the environment variable the daemon reads it from. A center administrator
sees and changes only the own center's clients; provincial clients (center ``*``) belong
to provincial administrators.
"""
from __future__ import annotations

from urllib.parse import urlencode

from console import audit
from console.accounts import AUDITOR, CENTER, PROVINCE, User
from console.web import Reply, Route, arg, redirect
from sms.door.clients import (CLASSES, SETTINGS, Client, ClientError, add_client,
                              change_client, describe, load_all)

# The form's fields, in the order the edit form shows them (each read by SETTINGS).
FIELDS = ("secret_env", "system_id", "templates", "classes", "free_text", "daily_quota",
          "rate_per_second", "source_exts", "keywords", "ip_allow", "callback_url",
          "callback_parts")
CHECKBOXES = ("free_text", "callback_parts")


def visible(session, user: User) -> list[Client]:
    return sorted((c for c in load_all(session).values() if user.may_see(c.center)),
                  key=lambda c: (c.center, c.name))


def _audit_center(client: Client) -> str | None:
    return None if client.center == "*" else client.center


def add(session, client: Client, who: str, now: float) -> None:
    add_client(session, client, who, now)
    audit.append(session, who, "door.client_add", f"door:{client.name}", None,
                 describe(client), now, center=_audit_center(client))


def change(session, user: User, name: str, changes: dict, now: float) -> Client:
    """Apply ``changes`` to a client the user may manage; audited with old and new values."""
    old = load_all(session).get(name)
    if old is None or not user.may_see(old.center):
        raise ClientError(f"no client {name!r}")
    if "center" in changes and not user.may_see(changes["center"]):
        raise ClientError("center: not one of yours")
    new = change_client(session, name, changes, user.name, now)
    before, after = describe(old), describe(new)
    changed = sorted(k for k in after if before[k] != after[k])
    if changed:
        audit.append(session, user.name, "door.client_change", f"door:{name}",
                     {k: before[k] for k in changed}, {k: after[k] for k in changed}, now,
                     center=_audit_center(new))
    return new


def form_changes(request) -> dict:
    """The settings a submitted edit form carries, read as the CLI reads them
    (ValueError for a number that is not one)."""
    changes = {}
    for name in FIELDS:
        if name == "classes":
            picked = [v.decode() for v in request.args.get(b"classes", [])]
            changes[name] = SETTINGS[name](",".join(picked))
        elif name in CHECKBOXES:
            changes[name] = SETTINGS[name]("yes" if arg(request, name) == "yes" else "no")
        elif arg(request, name) is not None:
            changes[name] = SETTINGS[name](arg(request, name) or "")
    return changes


class DoorPages:
    def __init__(self, console, templates=None):
        self.console, self.templates = console, templates  # templates: names as a hint

    def mount(self) -> None:
        def readers(u: User) -> bool:
            return u.role in (PROVINCE, CENTER, AUDITOR)

        def writers(u: User) -> bool:
            return u.may_change

        self.console.add_page("/door", Route(self.page, allowed=readers),
                              Route(self.add_post, allowed=writers), nav="door")
        self.console.add_page("/door/client", Route(self.client_page, allowed=readers),
                              Route(self.client_post, allowed=writers))

    def _centers(self, user: User) -> list[str]:
        mine = user.centers(self.console.config.centers)
        return ["*", *mine] if user.role == PROVINCE else mine

    async def page(self, request, session, message: str | None = None, code: int = 200):
        clients = await self.console.db.run(visible, session.user)
        return Reply(self.console.page(
            "door_clients.html", session, clients=clients, message=message,
            centers=self._centers(session.user), classes=CLASSES), code)

    async def add_post(self, request, session) -> Reply:
        user = session.user
        center = arg(request, "center") or (user.center or "")
        if center not in self._centers(user):
            return self.console.error_page(403, "forbidden", session.lang)
        name = (arg(request, "name") or "").strip()
        try:
            settings = form_changes(request)
            client = Client(name=name, center=center,
                            secret_env=settings.pop("secret_env", "") or "",
                            system_id=settings.pop("system_id", "") or name[:15],
                            **{k: v for k, v in settings.items() if v != ()})
            await self.console.db.run(add, client, user.name, self.console.clock.seconds())
        except (ClientError, ValueError) as e:
            return await self.page(request, session, str(e), 400)
        return redirect("/door/client?" + urlencode({"name": name}))

    async def client_page(self, request, session, message: str | None = None,
                          code: int = 200) -> Reply:
        name = arg(request, "name") or ""
        client = next((c for c in await self.console.db.run(visible, session.user)
                       if c.name == name), None)
        if client is None:
            return self.console.error_page(404, "not_found", session.lang)
        names = (self.templates.names(client.center)
                 if self.templates is not None and client.center != "*" else [])
        return Reply(self.console.page(
            "door_client.html", session, c=client, message=message, classes=CLASSES,
            template_names=names, centers=self._centers(session.user)), code)

    async def client_post(self, request, session) -> Reply:
        name, action = arg(request, "name") or "", arg(request, "action")
        try:
            if action in ("enable", "disable"):
                changes: dict = {"enabled": action == "enable"}
            elif action == "save":
                changes = form_changes(request)
            else:
                return self.console.error_page(400, "not_found", session.lang)
            await self.console.db.run(change, session.user, name, changes,
                                      self.console.clock.seconds())
        except (ClientError, ValueError) as e:
            return await self.client_page(request, session, str(e), 400)
        return redirect("/door/client?" + urlencode({"name": name}))
