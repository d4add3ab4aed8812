"""``hotline cluster status``: the daemons sharing this database, as the database sees them.

One line per instance (alive while its heartbeat is within its lease time, on the
database's clock), the SMS connections it holds per SMSC and the calls it drives
per Asterisk node, then every lease with its holder. ``--json`` gives the same
for the console's dashboard.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from storage.cluster import ClusterState


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _calls(status: dict) -> str:
    nodes = status.get("ivr") or {}
    return ", ".join(f"{node} {n['calls']} ({n['ami']})" for node, n in nodes.items()) or "-"


def _connections(status: dict) -> str:
    smscs = status.get("sms") or {}
    return ", ".join(f"{name} {s['connections']}" for name, s in smscs.items()) or "-"


def render(state: ClusterState, now: float) -> str:
    """The operator's table; ``now`` is the database's clock (uptimes)."""
    lines = ["instances:"]
    if not state.instances:
        lines.append("  none has started on this database yet")
    for i in state.instances:
        health = (f"alive, heartbeat {i.heartbeat_age:.1f} s ago" if i.alive
                  else f"DOWN, last heartbeat {_duration(i.heartbeat_age)} ago")
        lines.append(f"  {i.instance} on {i.host} pid {i.pid}: {health}, "
                     f"up {_duration(now - i.started_at)}")
        if i.alive:
            lines.append(f"    calls per Asterisk node: {_calls(i.status)}")
            lines.append(f"    SMS connections per SMSC: {_connections(i.status)}")
    lines.append("leases:")
    if not state.leases:
        lines.append("  none")
    for lease in state.leases:
        expiry = (f"renewed, expires in {lease.expires_in:.1f} s" if lease.expires_in > 0
                  else f"LAPSED {-lease.expires_in:.1f} s ago")
        lines.append(f"  {lease.name}: {lease.holder} for {_duration(lease.held_for)}, {expiry}")
    return "\n".join(lines)


def as_json(state: ClusterState) -> str:
    return json.dumps(asdict(state), ensure_ascii=False, indent=2, sort_keys=True)
