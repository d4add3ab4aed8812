"""core_client's part of the retention purge (common.retention): counters and code hashes.

Attempt counters (``security_limit``) that no longer lock anything and codes
expired more than a day ago (only their peppered hashes were kept) are deleted.
"""
from __future__ import annotations

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from core_client.tables import CoreCode, SecurityLimit

DAY = 86_400.0


def purge(session: Session, cutoff: float, now: float) -> dict[str, int]:
    """Delete stale counters and old codes; counts per table."""
    limits = session.execute(delete(SecurityLimit).where(
        SecurityLimit.updated_at < cutoff,
        or_(SecurityLimit.locked_until.is_(None), SecurityLimit.locked_until < now))).rowcount
    codes = session.execute(delete(CoreCode).where(
        CoreCode.expires_at < min(cutoff, now - DAY))).rowcount
    return {"security_limit": limits, "core_code": codes}
