"""Call records: gathered in memory during the call, written via ``Database.run``.

The row is inserted when the call arrives (so a daemon that dies mid-call
leaves an open row with no ``ended_at``) and completed when it ends, in one
transaction with the call's key-press counts.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from common.masking import mask_mobile
from ivr.tables import IvrCall, IvrKeyPress

# How a call ended, as counted by ``hotline ivr stats``.
OUTCOMES = ("ivr_handled", "transferred", "abandoned", "failed", "error")


def mask_caller(number: str) -> str:
    """Mobiles as 138****8000; shorter numbers (landlines, extensions) keep only their
    last 4 characters, so no caller number is ever stored whole."""
    number = number.strip()
    if len(number) >= 11:
        return mask_mobile(number)
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


@dataclass
class CallRecord:
    """What is kept about one call. ``keys`` holds menu choices only, never ID numbers or PINs."""

    instance: str
    center: str
    uniqueid: str
    caller: str  # already masked
    dnid: str
    language: str
    started_at: float
    path: list[str] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)
    identified: bool = False
    survey: int | None = None
    id: int | None = None

    @classmethod
    def start(cls, *, instance: str, center: str, uniqueid: str, caller_id: str | None,
              dnid: str | None, language: str, now: float) -> CallRecord:
        return cls(instance=instance, center=center, uniqueid=uniqueid,
                   caller=mask_caller(caller_id or ""), dnid=dnid or "", language=language,
                   started_at=now)

    def visit(self, node: str) -> None:
        self.path.append(node)

    def key(self, node: str, key: str) -> None:
        self.keys.append((node, key))


class CallRecords:
    """Persists call records; ``db`` is a ``storage.db.Database``."""

    def __init__(self, db, clock):
        self.db, self.clock = db, clock

    async def open(self, record: CallRecord) -> None:
        record.id = await self.db.run(_insert, record)

    async def close(self, record: CallRecord, outcome: str, served: int) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        await self.db.run(_finish, record, outcome, served, self.clock.seconds())


def _insert(session, record: CallRecord) -> int:
    row = IvrCall(instance=record.instance, center=record.center, uniqueid=record.uniqueid,
                  caller=record.caller, dnid=record.dnid, language=record.language,
                  started_at=record.started_at,
                  # The dialplan answers before AGI(agi:async): the call is answered on arrival.
                  answered_at=record.started_at,
                  path="", keys="", identified=0, served=0)
    session.add(row)
    session.flush()
    return row.id


def _finish(session, record: CallRecord, outcome: str, served: int, now: float) -> None:
    row = session.get(IvrCall, record.id)
    row.ended_at = now
    row.language = record.language
    row.path = " ".join(record.path)
    row.keys = " ".join(f"{node}:{key}" for node, key in record.keys)
    row.identified = int(record.identified)
    row.served = served
    row.outcome = outcome
    row.survey = record.survey
    for (node, key), count in Counter(record.keys).items():
        session.add(IvrKeyPress(call_id=record.id, center=record.center, node=node, key=key,
                                count=count))
