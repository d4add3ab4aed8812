"""The console's HTTP resource: sessions, CSRF, rate limits, roles, then one handler per page.

Every request passes the same gate in ``render``: a per-peer rate limit, the
session from its cookie (idle timeout), the role check of the route and, for a
POST, the session's CSRF token. Handlers are ``async def`` returning a
``Reply``; database work goes through ``Database.run`` so the reactor never waits.
Every request is answered, an unexpected error with a plain 500 page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from console import accounts, audit, figures, menus, rollup
from console.accounts import Login, User
from console.i18n import translate
from console.sessions import RateLimit, Session, SessionStore, csrf_ok

log = Logger(namespace="hotline.console")
HERE = Path(__file__).parent
COOKIE = b"hotline_console"
MAX_BODY = 16 * 1024 * 1024  # the largest prompt upload (the site refuses more, unread)
STATIC = {"console.css": "text/css; charset=utf-8"}
HEADERS = {
    b"content-security-policy": b"default-src 'self'; media-src 'self'; img-src 'self' data:; "
                                b"frame-ancestors 'none'; form-action 'self'",
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
}


@dataclass
class Reply:
    body: bytes = b""
    code: int = 200
    content_type: bytes = b"text/html; charset=utf-8"
    headers: dict[bytes, bytes] = field(default_factory=dict)


def redirect(to: str) -> Reply:
    return Reply(code=303, headers={b"location": to.encode()})


@dataclass(frozen=True)
class Route:
    handler: Callable[..., Awaitable[Reply]]
    login: bool = True  # a session is needed
    allowed: Callable[[User], bool] = lambda user: True


class Console(Resource):
    """The whole console as one leaf resource (paths are few and flat)."""

    isLeaf = True

    def __init__(self, config, db, clock, status=None):
        super().__init__()
        self.config, self.db, self.clock = config, db, clock
        self.status = status
        rules = config.console
        self.rules = rules
        self.sessions = SessionStore(clock, rules.idle_minutes * 60)
        self.peer_limit = RateLimit(clock, rules.requests_per_minute)
        self.login_limit = RateLimit(clock, rules.login_per_minute)
        self.jinja = Environment(loader=FileSystemLoader(HERE / "templates"),
                                 autoescape=select_autoescape(default=True))
        self.menus = menus.MenuBook(config)
        zone = ZoneInfo(self.menus.zone)
        self.jinja.filters["localtime"] = lambda ts: dt.datetime.fromtimestamp(
            ts, zone).strftime("%Y-%m-%d %H:%M:%S")
        self.nav: list[tuple[str, str]] = []  # (href, word) of the pages added below
        self.routes: dict[tuple[bytes, str], Route] = {
            (b"GET", "/login"): Route(self.login_page, login=False),
            (b"POST", "/login"): Route(self.login_post, login=False),
            (b"POST", "/logout"): Route(self.logout),
            (b"GET", "/lang"): Route(self.switch_language, login=False),
            (b"GET", "/"): Route(self.dashboard),
            (b"GET", "/audit"): Route(self.audit_page, allowed=lambda u: u.may_read_audit),
            (b"GET", "/menus"): Route(self.menus_page),
            (b"POST", "/menus"): Route(self.menus_post, allowed=lambda u: u.may_change),
            (b"POST", "/menus/holiday"): Route(self.holiday_post, allowed=lambda u: u.may_change),
        }

    def add_page(self, path: str, get: Route, post: Route | None = None,
                 nav: str | None = None) -> None:
        """Mount another room's page (GET, optional POST) and its navigation link."""
        self.routes[(b"GET", path)] = get
        if post is not None:
            self.routes[(b"POST", path)] = post
        if nav is not None:
            self.nav.append((path, nav))

    # ---- the gate --------------------------------------------------------------
    def render(self, request):
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = Deferred.fromCoroutine(self._answer(request, gone))
        d.addErrback(self._crashed, request, gone)
        return NOT_DONE_YET

    async def _answer(self, request, gone: list[bool]) -> None:
        reply = await self._route(request)
        if gone:
            return
        request.setResponseCode(reply.code)
        for name, value in {**HEADERS, b"content-type": reply.content_type,
                            **reply.headers}.items():
            request.setHeader(name, value)
        request.write(reply.body)
        request.finish()

    def _crashed(self, failure, request, gone: list[bool]) -> None:
        log.failure("console request {path} failed", failure,
                    path=request.path.decode(errors="replace"))
        if not gone and not request.finished:
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write("服务器内部错误 / internal error\n".encode())
            request.finish()

    async def _route(self, request) -> Reply:
        peer = getattr(request.getClientAddress(), "host", "?")
        lang = self._lang(request)
        if not self.peer_limit.allow(peer):
            return self.error_page(429, "too_many", lang)
        path = request.path.decode("utf-8", "replace")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        route = self.routes.get((request.method, path))
        if route is None:
            return self.error_page(404 if not any(p == path for _m, p in self.routes) else 405,
                               "not_found", lang)
        session = self.sessions.get((request.getCookie(COOKIE) or b"").decode("ascii", "replace"))
        if session is not None:
            lang = session.lang
        if route.login and session is None:
            if request.method == b"POST":
                return self.error_page(403, "csrf", lang)
            return redirect("/login")
        if request.method == b"POST" and route.login and not csrf_ok(session, arg(request, "csrf")):
            log.warn("console: a form without its session's CSRF token was refused ({path})",
                     path=path)
            return self.error_page(403, "csrf", lang)
        if session is not None and not route.allowed(session.user):
            return self.error_page(403, "forbidden", lang)
        return await route.handler(request, session)

    def _lang(self, request) -> str:
        return "en" if request.getCookie(b"hotline_lang") == b"en" else "zh"

    def _static(self, name: str) -> Reply:
        if name not in STATIC:
            return Reply(b"not found", 404, b"text/plain")
        return Reply((HERE / "static" / name).read_bytes(), content_type=STATIC[name].encode(),
                     headers={b"cache-control": b"max-age=3600"})

    def center_of(self, request, user: User) -> str | None:
        """The center a page is asked for (``?center=``, else the user's first); None when
        the user may not see it."""
        mine = user.centers(self.config.centers)
        center = arg(request, "center") or mine[0]
        return center if center in mine else None

    def error_page(self, code: int, key: str, lang: str) -> Reply:
        return Reply(self.page("error.html", None, lang, message=translate(key, lang)), code)

    def page(self, name: str, session: Session | None, lang: str | None = None, **ctx) -> bytes:
        lang = lang or (session.lang if session else "zh")
        template = self.jinja.get_template(name)
        return template.render(t=lambda key: translate(key, lang), lang=lang, session=session,
                               user=session.user if session else None,
                               role_name=lambda r: accounts.ROLES[r][0 if lang == "zh" else 1],
                               center_name=self.center_name, extra_nav=self.nav,
                               **ctx).encode()

    def center_name(self, code: str) -> str:
        center = self.config.centers.get(code)
        return center.name if center else code

    def visible_centers(self, user: User) -> list[str]:
        return user.centers(self.config.centers)

    def cookie(self, request, name: bytes, value: str, max_age: int | None = None) -> None:
        request.addCookie(name, value.encode(), path=b"/", httpOnly=True, sameSite="strict",
                          secure=self.rules.secure_cookies,
                          max_age=None if max_age is None else str(max_age))

    # ---- login and sessions ----------------------------------------------------
    async def login_page(self, request, session, message: str | None = None, code: int = 200):
        lang = self._lang(request)
        return Reply(self.page("login.html", None, lang, message=message), code)

    async def login_post(self, request, session) -> Reply:
        lang = self._lang(request)
        peer = getattr(request.getClientAddress(), "host", "?")
        if not self.login_limit.allow(peer):
            return await self.login_page(request, None, translate("too_many", lang), 429)
        name, password = arg(request, "username") or "", arg(request, "password") or ""
        result, user = await self.db.run(accounts.login, name, password, self.clock.seconds(),
                                         self.rules.max_failures,
                                         self.rules.lockout_minutes * 60)
        if result is Login.LOCKED:
            return await self.login_page(request, None, translate("locked", lang), 403)
        if result is not Login.OK:
            return await self.login_page(request, None, translate("bad_login", lang), 403)
        if session is not None:
            self.sessions.close(session.token)
        new = self.sessions.open(user)
        new.lang = lang
        self.cookie(request, COOKIE, new.token)
        return redirect("/")

    async def logout(self, request, session) -> Reply:
        self.sessions.close(session.token)
        self.cookie(request, COOKIE, "", max_age=0)
        return redirect("/login")

    async def switch_language(self, request, session) -> Reply:
        lang = "en" if arg(request, "to") == "en" else "zh"
        self.cookie(request, b"hotline_lang", lang, max_age=365 * 86400)
        if session is not None:
            session.lang = lang
        back = arg(request, "back") or "/"
        return redirect(back if back.startswith("/") and not back.startswith("//") else "/")

    # ---- pages -----------------------------------------------------------------
    def _chosen_center(self, request, user: User) -> list[str] | None:
        """The centers a page shows: all the user's, or the one asked for (None: refused)."""
        mine = self.visible_centers(user)
        asked = arg(request, "center")
        if not asked:
            return mine
        return [asked] if asked in mine else None

    async def dashboard(self, request, session) -> Reply:
        centers = self._chosen_center(request, session.user)
        if centers is None:
            return self.error_page(403, "forbidden", session.lang)
        now = self.clock.seconds()
        since = figures.day_start(now, self.menus.zone)
        day = dt.datetime.fromtimestamp(since, ZoneInfo(self.menus.zone)).date().isoformat()
        data = await self.db.run(figures.today, centers, since, day)
        links = self.status.links() if self.status is not None else []
        return Reply(self.page(
            "dashboard.html", session, centers=centers, data=data, links=links,
            all_centers=self.visible_centers(session.user),
            chosen=arg(request, "center") or "",
            calls_chart=figures.chart(data["hours"]["calls"]),
            sms_chart=figures.chart(data["hours"]["sms"]), reasons=rollup.HEADINGS))

    async def audit_page(self, request, session) -> Reply:
        before = arg(request, "before")
        rows = await self.db.run(audit.recent, 200, None,
                                 int(before) if before and before.isdigit() else None)
        verdict = await self.db.run(audit.verify)
        return Reply(self.page("audit.html", session, rows=rows, verdict=verdict))

    async def menus_page(self, request, session) -> Reply:
        centers = self._chosen_center(request, session.user)
        if centers is None:
            return self.error_page(403, "forbidden", session.lang)
        switches = await self.db.run(menus.switches, centers)
        holidays = await self.db.run(menus.holidays, centers)
        return Reply(self.page("menus.html", session, centers=centers,
                               items={c: self.menus.items(c) for c in centers},
                               switches=switches, holidays=holidays))

    async def holiday_post(self, request, session) -> Reply:
        center, day = arg(request, "center") or "", (arg(request, "day") or "").strip()
        if not session.user.may_see(center) or center not in self.config.centers:
            return self.error_page(403, "forbidden", session.lang)
        try:
            await self.db.run(menus.set_holiday, center, day, arg(request, "name") or "",
                              session.user.name, self.clock.seconds(),
                              arg(request, "remove") == "1")
        except ValueError:
            return Reply(self.page("error.html", session, message=f"{day}: YYYY-MM-DD"), 400)
        return redirect("/menus?" + urlencode({"center": center}))

    async def menus_post(self, request, session) -> Reply:
        center, node = arg(request, "center") or "", arg(request, "node") or ""
        if not session.user.may_see(center) or node not in self.menus.items(center):
            return self.error_page(403, "forbidden", session.lang)
        hours = arg(request, "hours")
        change = {"enabled": arg(request, "enabled") == "1"} if hours is None else {
            "hours": hours.strip(), "days": (arg(request, "days") or "").strip()}
        try:
            await self.db.run(menus.switch, center, node, session.user.name,
                              self.clock.seconds(), self.menus.default_on(center, node),
                              **change)
        except ValueError as e:
            return Reply(self.page("error.html", session, message=f"{node}: {e}"), 400)
        return redirect("/menus?" + urlencode({"center": center}))


def arg(request, name: str) -> str | None:
    values = request.args.get(name.encode())
    if not values:
        return None
    value = values[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

