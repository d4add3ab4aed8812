"""The console's audit log: append-only rows, each hash-chained to the one before.

Row ``n`` stores ``sha256(digest of row n-1 + its own fields)`` and ids run 1, 2, 3
without gaps, so ``verify`` finds any row edited, deleted or inserted directly in
the database. Appends take the last row under ``FOR UPDATE`` (PostgreSQL) or the
write lock (SQLite), so concurrent appends from several daemons still chain.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.tables import AuditEntry

GENESIS = "0" * 64


def _digest(previous: str, id_: int, at: float, who: str, action: str, center: str | None,
            target: str, old: str | None, new: str | None) -> str:
    body = json.dumps([id_, repr(float(at)), who, action, center, target, old, new],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((previous + body).encode()).hexdigest()


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def append(session: Session, who: str, action: str, target: str, old, new, now: float, *,
           center: str | None = None) -> AuditEntry:
    """Add one change (old and new as text or JSON-able values) at the end of the chain."""
    last = session.execute(select(AuditEntry.id, AuditEntry.digest)
                           .order_by(AuditEntry.id.desc()).limit(1).with_for_update()).first()
    id_, previous = (last[0] + 1, last[1]) if last else (1, GENESIS)
    old, new = _text(old), _text(new)
    row = AuditEntry(id=id_, at=now, who=who, action=action, center=center, target=target,
                     old=old, new=new,
                     digest=_digest(previous, id_, now, who, action, center, target, old, new))
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Verdict:
    rows: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session) -> Verdict:
    """Walk the chain from the first row: every id in turn, every digest recomputed."""
    previous, expected, problems, count = GENESIS, 1, [], 0
    for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
        count += 1
        if row.id != expected:
            problems.append(f"rows {expected}..{row.id - 1} are missing")
        digest = _digest(previous, row.id, row.at, row.who, row.action, row.center, row.target,
                         row.old, row.new)
        if digest != row.digest:
            problems.append(f"row {row.id} was changed (digest does not match)")
        previous, expected = row.digest, row.id + 1
    return Verdict(count, problems)


def recent(session: Session, limit: int = 200, centers: list[str] | None = None,
           before: int | None = None) -> list[AuditEntry]:
    """The newest entries, optionally only those of some centers (or of none)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if centers is not None:
        q = q.where((AuditEntry.center.in_(centers)) | (AuditEntry.center.is_(None)))
    if before is not None:
        q = q.where(AuditEntry.id < before)
    return list(session.scalars(q))
