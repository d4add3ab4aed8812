"""Call records: gathered in memory during the call, written via ``Database.run``.

The row is inserted when the call arrives (so a daemon that dies mid-call
leaves an open row with no ``ended_at``) and completed when it ends, in one
transaction with the call's key-press counts. A call another daemon adopts
(``ivr.asterisk.adoption``) goes on in that open row, which then names the adopter. ``settle`` closes what a dead
daemon left open (outcome ``lost``) and records the calls that met the
dialplan's fallback (``fallback``), from what Asterisk kept about them. A record
that closes takes its caller's identity with it (``ivr.identities``); settling also
sweeps identities past their expiry.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from common.masking import mask_mobile
from ivr.identities import forget, forget_expired
from ivr.tables import IvrCall, IvrKeyPress

# How a call ended, as counted by ``hotline ivr stats``: ``lost`` when the daemon driving it
# died, ``fallback`` for a call only the dialplan's fallback answered (no daemon took it).
OUTCOMES = ("ivr_handled", "transferred", "abandoned", "failed", "error", "lost", "fallback")


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
    agent: str | None = None  # sent to the agents' queue: ivr.agents' answered/abandoned/unknown
    id: int | None = None
    adopted: bool = False  # taken over from a dead daemon: its open row goes on

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


@dataclass(frozen=True)
class FallbackCall:
    """What the dialplan keeps about a call that met its fallback (AstDB
    ``hotline_fallback/<uniqueid>``, written at hang-up, see dialplans/extensions.conf):
    ``instance|center|answered|fallback_at|ended|reason|role|language|masked caller``."""

    uniqueid: str
    instance: str
    center: str
    answered_at: float
    ended_at: float
    reason: str
    role: str
    language: str
    caller: str

    @classmethod
    def parse(cls, uniqueid: str, value: str) -> FallbackCall | None:
        """None for a value of another shape (not ours to interpret)."""
        fields = value.split("|")
        if len(fields) != 9:
            return None
        instance, center, answered, _fallback_at, ended, reason, role, language, caller = fields
        try:
            answered_at, ended_at = float(answered), float(ended)
        except ValueError:
            return None
        # The dialplan masks the number; masking again costs nothing and guards a bad config.
        return cls(uniqueid, instance, center, answered_at, ended_at, reason, role, language,
                   caller if "*" in caller else mask_caller(caller))


class CallRecords:
    """Persists call records; ``db`` is a ``storage.db.Database``."""

    def __init__(self, db, clock, on_closed=None):
        # on_closed(session, record, ended_at, outcome) runs in the closing transaction
        # (the console's report rollups).
        self.db, self.clock, self.on_closed = db, clock, on_closed

    async def open(self, record: CallRecord) -> None:
        record.id = await self.db.run(_insert, record)

    async def close(self, record: CallRecord, outcome: str, served: int) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        await self.db.run(_finish, record, outcome, served, self.clock.seconds(),
                          self.on_closed)

    async def settle(self, instance: str, fallbacks: list[FallbackCall], busy: set[str]
                     ) -> tuple[int, int]:
        """Close this instance's records that no call is behind any more, and record calls
        that met the fallback; returns (closed as lost, recorded as fallback). Each is
        handed to ``on_closed`` too, so the reports count them.

        ``busy``: uniqueids of calls still running here or still up in Asterisk, left open
        (one that meets the fallback later is settled by its fallback entry)."""
        return await self.db.run(_settle, instance, fallbacks, busy, self.on_closed,
                                 self.clock.seconds())


def _insert(session, record: CallRecord) -> int:
    if record.adopted:
        row = session.scalars(select(IvrCall).where(IvrCall.uniqueid == record.uniqueid,
                                                    IvrCall.outcome.is_(None))).first()
        if row is not None:
            row.instance = record.instance
            record.started_at = row.started_at
            return row.id
    row = IvrCall(instance=record.instance, center=record.center, uniqueid=record.uniqueid,
                  caller=record.caller, dnid=record.dnid, language=record.language,
                  started_at=record.started_at,
                  # The dialplan answers before AGI(agi:async): the call is answered on arrival.
                  answered_at=record.started_at,
                  path="", keys="", identified=0, served=0)
    session.add(row)
    session.flush()
    return row.id


def _finish(session, record: CallRecord, outcome: str, served: int, now: float,
            on_closed=None) -> None:
    row = session.get(IvrCall, record.id)
    row.ended_at = now
    row.language = record.language
    row.path = " ".join(record.path)
    row.keys = " ".join(f"{node}:{key}" for node, key in record.keys)
    row.identified = int(record.identified)
    row.served = served
    row.outcome = outcome
    row.survey = record.survey
    forget(session, [record.uniqueid])
    for (node, key), count in Counter(record.keys).items():
        session.add(IvrKeyPress(call_id=record.id, center=record.center, node=node, key=key,
                                count=count))
    if on_closed is not None:
        on_closed(session, record, now, outcome)


def _settle(session, instance: str, fallbacks: list[FallbackCall], busy: set[str],
            on_closed, now: float) -> tuple[int, int]:
    closed: list[IvrCall] = []
    for fb in fallbacks:
        row = session.scalars(select(IvrCall).where(IvrCall.instance == instance,
                                                    IvrCall.uniqueid == fb.uniqueid)).first()
        if row is None:
            if fb.role != "ivr":
                continue  # an administrator's recording call is no hotline call
            # no daemon took it: the fallback was all the caller got
            row = IvrCall(instance=instance, center=fb.center, uniqueid=fb.uniqueid,
                          caller=fb.caller, dnid="", language=fb.language,
                          started_at=fb.answered_at, answered_at=fb.answered_at,
                          ended_at=fb.ended_at, path="fallback", keys="",
                          identified=0, served=0, outcome="fallback")
            session.add(row)
            closed.append(row)
        elif row.outcome is None:  # its daemon died; Asterisk knows when the call ended
            row.outcome, row.ended_at = "lost", fb.ended_at
            row.path = f"{row.path} fallback".strip()
            closed.append(row)
    for row in session.scalars(select(IvrCall).where(IvrCall.instance == instance,
                                                     IvrCall.outcome.is_(None))):
        if row.uniqueid not in busy:  # gone without a trace: closed, duration unknown
            row.outcome = "lost"
            closed.append(row)
    forget(session, [row.uniqueid for row in closed])
    forget_expired(session, now)
    if on_closed is not None:
        for row in closed:
            record = CallRecord(instance=row.instance, center=row.center,
                                uniqueid=row.uniqueid, caller=row.caller, dnid=row.dnid,
                                language=row.language, started_at=row.started_at)
            on_closed(session, record, row.ended_at, row.outcome)
    lost = sum(1 for row in closed if row.outcome == "lost")
    return lost, len(closed) - lost
