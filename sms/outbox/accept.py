"""Accepting: destination check, dedupe by idempotency key, opt-outs, the per-destination
limit, the insert.

Runs inside one transaction on the pool thread; a refused message gets its
OutboxError as its result, never an exception that would fail its batch.
"""
from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import delete, insert, select

from common.masking import mask_mobile
from sms.carrier.destinations import InvalidDestination, normalise
from sms.outbox.quiet_hours import QuietHours
from sms.outbox.records import (
    Accepted,
    BadDestination,
    BadIdempotencyKey,
    DestinationLimited,
    OptedOut,
    Outgoing,
)
from sms.outbox.sql import LIMITED, OPTOUT, HotSql, M

CLASSES = ("code", "reply", "transaction", "bulk")
PRIORITY = {"code": 30, "reply": 25, "transaction": 20, "bulk": 10}
OPTABLE = frozenset({"transaction", "bulk"})  # classes a TD opt-out stops
#: A message's params as stored; one encoder for every message (``json.dumps`` with options
#: builds a new one per call).
_params_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
IDEM_KEY_MAX = M.c.idem_key.type.length  # SQLite would store a longer one, PostgreSQL refuse


def accept_batch(session, hot: HotSql, config, quiet: QuietHours, items: list[Outgoing],
                 now: float) -> list:
    """One result per item: Accepted (``duplicate`` for a known key) or the OutboxError."""
    results: list = [None] * len(items)
    items = list(items)
    for i, m in enumerate(items):
        if not m.idem_key or len(m.idem_key) > IDEM_KEY_MAX:
            results[i] = BadIdempotencyKey(
                f"idempotency key must be 1 to {IDEM_KEY_MAX} characters, not {len(m.idem_key)}")
            continue
        try:
            destination = normalise(m.destination, config.destination_formats(m.center))
        except InvalidDestination as e:
            results[i] = BadDestination(str(e))
            continue
        if destination != m.destination:
            items[i] = replace(m, destination=destination)
    live = [(i, m) for i, m in enumerate(items) if results[i] is None]
    existing: dict = known_keys(session, hot, [m for _, m in live])
    optable = {(m.center, m.destination) for _, m in live if m.klass in OPTABLE}
    opted = {(r.center, r.mobile) for r in hot.by_center(session, hot.opted_out, optable)}
    limited = {m.destination for _, m in live if m.klass in LIMITED}
    counts: dict[str, int] = dict(
        hot.run(session, hot.recent_per_destination, (now - 3600,), sorted(limited)).all()
        if limited else ())
    rows, owners = [], []
    for i, m in live:
        key = (m.center, m.idem_key)
        if key in existing:
            results[i] = existing[key]
            continue
        if (m.center, m.destination) in opted and m.klass in OPTABLE:
            results[i] = OptedOut(f"{mask_mobile(m.destination)} opted out of {m.klass}")
            continue
        if m.klass in LIMITED:
            counts[m.destination] = counts.get(m.destination, 0) + 1
            if counts[m.destination] > config.per_destination_per_hour:
                results[i] = DestinationLimited(
                    f"{mask_mobile(m.destination)} reached "
                    f"{config.per_destination_per_hour} messages this hour")
                continue
        valid_for = m.valid_for or config.validity[m.klass]
        existing[key] = None  # a twin later in this batch is a duplicate of this one
        rows.append((
            m.center, m.klass, PRIORITY[m.klass], m.template,
            _params_json(m.params), m.text,
            int(m.sensitive), m.destination, m.idem_key, len(m.parts),
            quiet.release_at(m.klass, now), now + valid_for, now))
        owners.append(i)
    if rows:
        new_ids = hot.insert_messages(session, rows,
                                      [(items[i].center, items[i].idem_key) for i in owners])
        part_rows = []
        for i, message_id in zip(owners, new_ids, strict=True):
            m = items[i]
            results[i] = Accepted(message_id, len(m.parts), False)
            existing[(m.center, m.idem_key)] = Accepted(message_id, len(m.parts), True)
            for seq, part in enumerate(m.parts):
                part_rows.append((message_id, seq, part.payload, part.data_coding,
                                  part.esm_class))
        hot.insert(session, hot.insert_part, part_rows)
    for i, m in enumerate(items):
        if results[i] is None:  # an in-batch twin of a message inserted above
            results[i] = existing[(m.center, m.idem_key)]
    return results


def known_keys(session, hot: HotSql, items: list[Outgoing]) -> dict:
    """The messages already committed under these items' (center, idempotency key): a
    resent item is answered with its first message before any filter can refuse it."""
    keys = {(m.center, m.idem_key) for m in items}
    return {(center, key): Accepted(message_id, parts, True) for message_id, center, key, parts
            in hot.by_center(session, hot.by_idem_key, keys)} if keys else {}


def set_opt_out(session, center: str, mobile: str, opted_out: bool, now: float) -> None:
    session.execute(delete(OPTOUT).where(OPTOUT.c.center == center, OPTOUT.c.mobile == mobile))
    if opted_out:
        session.execute(insert(OPTOUT).values(center=center, mobile=mobile, created_at=now))


def is_opted_out(session, center: str, mobile: str) -> bool:
    return session.execute(select(OPTOUT.c.id).where(
        OPTOUT.c.center == center, OPTOUT.c.mobile == mobile)).first() is not None
