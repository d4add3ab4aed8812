"""Menu items switched on or off per center from the console, read by the IVR at each call.

The menu files stay the source of the menus; a switch is a row that overrides one
item's ``enabled`` for one center. The IVR asks ``SwitchReader`` at the start of
every call, so a change applies to the next call without a restart.
"""
from __future__ import annotations

from sqlalchemy import select

from console import audit
from console.tables import MenuSwitch

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
                        items[target] = {"parent": node.name, "key": key,
                                         "label": LABELS.get(target, target),
                                         "default": menu.nodes[target].enabled}
            self._items[code] = items

    def items(self, center: str) -> dict[str, dict]:
        return self._items.get(center, {})

    def default_on(self, center: str, node: str) -> bool:
        return self._items[center][node]["default"]


def switches(session, centers: list[str]) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {c: {} for c in centers}
    for row in session.scalars(select(MenuSwitch).where(MenuSwitch.center.in_(centers))):
        out[row.center][row.node] = row.enabled
    return out


def switch(session, center: str, node: str, enabled: bool, who: str, now: float,
           default: bool) -> None:
    """Set one item on or off for one center (audited with the old and new state)."""
    row = session.get(MenuSwitch, (center, node))
    old = row.enabled if row is not None else default
    if row is None:
        session.add(MenuSwitch(center=center, node=node, enabled=enabled, updated_at=now,
                               who=who))
    else:
        row.enabled, row.updated_at, row.who = enabled, now, who
    audit.append(session, who, "menu.switch", f"menu:{center}:{node}",
                 {"enabled": old}, {"enabled": enabled}, now, center=center)


class SwitchReader:
    """What the IVR asks at the start of each call: the center's items and their switches."""

    def __init__(self, db):
        self.db = db

    async def __call__(self, center: str) -> dict[str, bool]:
        return (await self.db.run(switches, [center]))[center]
