"""Bringing a message's state in line with its parts, after any part changed.

Every room that moves parts (submit results, receipts, expiry, recovery) ends
its transaction here: the pure roll-up (sms.outbox.states) decides the message
state, temporary errors back off, sensitive text (codes) is scrubbed as soon as
every part is submitted (nothing resends a submitted part, and its receipt may
never come), or at the final state of a message that never got that far.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, update

from sms.outbox.sql import SCRUB_PARTS, SCRUB_TEXT, SENSITIVE, HotSql, M, P
from sms.outbox.states import (
    DELIVERED,
    EXPIRED,
    FAILED,
    QUEUED,
    SUBMITTED,
    check_transition,
    rollup,
)


def settle(session, hot: HotSql, retry, message_ids: Iterable[int], now: float,
           recovered: bool = False) -> None:
    """Bring each message's state in line with its parts (temporary errors back off
    by ``retry.retry_base`` doubling up to ``retry.retry_max``).

    ``recovered`` (after a crash): requeued messages are due at once and ahead of every
    queued message of their priority, since they were in flight before the backlog."""
    message_ids = list(message_ids)
    if not message_ids:
        return
    parts: dict[int, list[str]] = {}
    errors: dict[tuple[int, str], str] = {}  # (message, part state) -> a part's error
    rows = {}
    for r in hot.rows(session, hot.rollup, (), message_ids):
        parts.setdefault(r[0], []).append(r[5])
        if r[6] is not None:
            errors.setdefault((r[0], r[5]), r[6])
        rows[r[0]] = r
    submitted, final, requeue = [], {}, []
    for message_id, (_, state, attempts, valid_until, _sensitive, _, _) in rows.items():
        new = rollup(parts[message_id])
        if new == state:
            continue
        check_transition(state, new)
        if new == SUBMITTED:
            submitted.append(message_id)
        elif new == QUEUED:
            delay = 0.0 if recovered else min(
                retry.retry_max, retry.retry_base * (2 ** attempts))
            if now + delay >= valid_until:
                final.setdefault(EXPIRED, []).append(message_id)
            else:
                requeue.append({"mid": message_id, "at": 0.0 if recovered else now + delay,
                                "attempts": attempts + (0 if recovered else 1)})
        else:
            final.setdefault(new, []).append(message_id)
    if submitted:
        hot.run(session, hot.submitted, (now,), submitted)
        scrub(session, [i for i in submitted if rows[i][4]])
    if requeue:
        session.execute(update(M).where(M.c.id == bindparam("mid")).values(
            state=QUEUED, next_attempt_at=bindparam("at"), attempts=bindparam("attempts"),
            claimed_by=None), requeue)
    for state, ids in final.items():
        if state != DELIVERED:  # a delivered message has no unsent part left
            session.execute(update(P).where(P.c.message_id.in_(ids), P.c.state == QUEUED)
                            .values(state=state if state == EXPIRED else FAILED,
                                    done_at=now, error_code="not sent"))
        # The message's error is the reason of a part that decided its state.
        by_error: dict[str | None, list[int]] = {}
        for i in ids:
            error = errors.get((i, state)) or ("validity" if state == EXPIRED else None)
            by_error.setdefault(error, []).append(i)
        for error, group in by_error.items():
            set_final(session, hot, group, state, now, error,
                      sensitive=[i for i in group if rows[i][4]])


def set_final(session, hot: HotSql, ids: list[int], state: str, now: float,
              error: str | None = None, sensitive: list[int] | None = None) -> None:
    """Final state; sensitive text (codes) is scrubbed. ``sensitive`` if the caller knows."""
    hot.run(session, hot.final, (state, now, error), ids)
    if sensitive is None:
        sensitive = [r[0] for r in session.execute(SENSITIVE, {"ids": ids})]
    scrub(session, sensitive)


def scrub(session, ids: list[int]) -> None:
    """Remove the text, parameters and encoded parts of sensitive messages (codes)."""
    if ids:
        session.execute(SCRUB_TEXT, {"ids": ids})
        session.execute(SCRUB_PARTS, {"ids": ids})
