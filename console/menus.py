"""Menu items switched on or off per center from the console, read by the IVR at each call.

The menu files stay the source of the menus; a switch is a row that overrides one
item's ``enabled`` for one center. The IVR asks ``SwitchReader`` at the start of
every call, so a change applies to the next call without a restart.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from console import audit
from common.daily_window import DailyWindow
from console.tables import Holiday, MenuSwitch
from ivr.menu import Switch

LABELS = {
    "deposit": "缴存业务", "loan": "贷款业务", "policy": "政策咨询", "agent": "人工服务",
    "balance": "账户余额", "deposits": "缴存明细", "change-password": "修改查询密码",
    "sms-balance": "短信发送余额", "goodbye": "结束通话与满意度评价", "loan-summary": "贷款信息",
}


class MenuBook:
    """The switchable items of every center's menu: targets of keys, languages aside."""

    def __init__(self, config):
        from ivr.flows import FLOWS
        from ivr.menu import load_for_center

        self.zone = next(iter(config.centers.values())).timezone
        self.zones = {code: center.timezone for code, center in config.centers.items()}
        self._items: dict[str, dict[str, dict]] = {}
        self._menus = {}
        menus_dir = config.ivr.menus_dir if config.ivr is not None else None
        for code in config.centers:
            if menus_dir is None:
                self._items[code] = {}
                continue
            menu = load_for_center(menus_dir, code, FLOWS)
            self._menus[code] = menu
            items: dict[str, dict] = {}
            for node in menu.nodes.values():
                if node.kind != "menu" or node.name == menu.start:
                    continue
                for key, target in sorted(node.keys.items()):
                    if target not in items and menu.nodes[target].kind != "language":
                        hours = menu.nodes[target].hours
                        items[target] = {"parent": node.name, "key": key,
                                         "label": LABELS.get(target, target),
                                         "default": menu.nodes[target].enabled,
                                         "hours": _window_text(hours), "window": hours}
            self._items[code] = items

    def items(self, center: str) -> dict[str, dict]:
        return self._items.get(center, {})

    def default_on(self, center: str, node: str) -> bool:
        return self._items[center][node]["default"]


def _window_text(w: DailyWindow) -> str:
    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return f"{hhmm(w.start)}-{hhmm(w.end)}"


def switches(session, centers: list[str]) -> dict[str, dict[str, dict]]:
    """center -> item -> {enabled, hours, days} as the administrators set them."""
    out: dict[str, dict[str, dict]] = {c: {} for c in centers}
    for row in session.scalars(select(MenuSwitch).where(MenuSwitch.center.in_(centers))):
        out[row.center][row.node] = {"enabled": row.enabled, "hours": row.hours,
                                     "days": row.days}
    return out


def window(hours: str | None, days: str | None) -> DailyWindow | None:
    """An item's service hours from the form's text (``09:00-17:00``, days ``1,2,3,4,5``);
    None for none set. Raises ValueError saying what is wrong."""
    if not hours:
        return None
    try:
        day_list = tuple(int(d) for d in (days or "1,2,3,4,5,6,7").replace(" ", "").split(","))
    except ValueError:
        raise ValueError("days must be ISO weekdays 1-7, like 1,2,3,4,5") from None
    return DailyWindow.parse(hours, day_list)


def switch(session, center: str, node: str, who: str, now: float, default: bool, *,
           enabled: bool | None = None, hours: str | None = None,
           days: str | None = None) -> None:
    """Set one item on or off, or its service hours (empty: the menu file's), for one center;
    audited with the old and new settings."""
    row = session.get(MenuSwitch, (center, node))
    if row is None:
        row = MenuSwitch(center=center, node=node, enabled=default, hours=None, days=None,
                         updated_at=now, who=who)
        session.add(row)
    old = {"enabled": row.enabled, "hours": row.hours, "days": row.days}
    if enabled is not None:
        row.enabled = enabled
    if hours is not None:
        window(hours, days)  # refuses a bad window before anything is stored
        row.hours, row.days = hours or None, (days or None) if hours else None
    row.updated_at, row.who = now, who
    new = {"enabled": row.enabled, "hours": row.hours, "days": row.days}
    audit.append(session, who, "menu.switch", f"menu:{center}:{node}", old, new, now,
                 center=center)


def holidays(session, centers: list[str]) -> dict[str, list[Holiday]]:
    out: dict[str, list[Holiday]] = {c: [] for c in centers}
    for row in session.scalars(select(Holiday).where(Holiday.center.in_(centers))
                               .order_by(Holiday.day)):
        out[row.center].append(row)
    return out


def set_holiday(session, center: str, day: str, name: str, who: str, now: float,
                remove: bool = False) -> None:
    """Add (or remove) a holiday of one center; audited."""
    dt.date.fromisoformat(day)  # a ValueError for a malformed date
    row = session.get(Holiday, (center, day))
    if remove:
        if row is not None:
            session.delete(row)
            audit.append(session, who, "menu.holiday_remove", f"holiday:{center}:{day}",
                         row.name, None, now, center=center)
        return
    if row is None:
        session.add(Holiday(center=center, day=day, name=name[:64] or "节假日"))
        audit.append(session, who, "menu.holiday_add", f"holiday:{center}:{day}", None,
                     name[:64] or "节假日", now, center=center)


def _is_holiday(session, center: str, day: str) -> bool:
    return session.get(Holiday, (center, day)) is not None


CLOSED = DailyWindow(0, 0)  # open no minute of any day


class SwitchReader:
    """What the IVR asks at the start of each call: the center's item overrides, and on one
    of its holidays the agents and every item with service hours closed."""

    def __init__(self, db, book: MenuBook, clock):
        self.db, self.book, self.clock = db, book, clock

    async def __call__(self, center: str) -> dict[str, Switch]:
        rows = (await self.db.run(switches, [center]))[center]
        out = {node: Switch(r["enabled"], window(r["hours"], r["days"]))
               for node, r in rows.items()}
        today = dt.datetime.fromtimestamp(self.clock.seconds(),
                                          ZoneInfo(self.book.zones[center])).date().isoformat()
        if await self.db.run(_is_holiday, center, today):
            for node, item in self.book.items(center).items():
                switch = out.get(node)
                limited = (switch.hours if switch and switch.hours else item["window"])
                if node == "agent" or limited != DailyWindow():
                    out[node] = Switch(switch.enabled if switch else item["default"], CLOSED)
        return out
