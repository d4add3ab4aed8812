"""Accepting a client's messages: filters, duplicates, quota and rate, then the outbox's
own accept, all in ONE transaction, so nothing is acknowledged before it is committed and
no two concurrent requests can both spend the last of a quota.

Counters are rows of ``door_counter`` changed by ``UPDATE ... RETURNING`` under the row's
lock (PostgreSQL) or the single writer (SQLite): reserve first, give back what was not used.
Every item is tallied per center, client, template and day: ``pushed``, and either its
refusal reason or nothing; a message held for quiet hours also counts ``held_quiet_hours``.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select

from sms.door.filters import HELD, Refused, normalise_mobile, parse_item, render
from storage.driver_sql import DriverSql
from sms.outbox.records import (
    BadDestination, BadIdempotencyKey, DestinationLimited, EncodedPart, OptedOut, OutboxError,
    Outgoing, Unrenderable,
)
from sms.outbox.sql import M

DUP_CHUNK = 500
# The outbox's own refusals at accept, as the door's reasons.
OUTBOX_REASONS = {OptedOut: "opted_out", DestinationLimited: "destination_limited",
                  BadDestination: "invalid_number", BadIdempotencyKey: "bad_request",
                  Unrenderable: "bad_params"}


@dataclass(frozen=True)
class SmppSubmit:
    """One submit_sm as the SMPP server read it (its text decoded for the filters)."""

    destination: str
    ext: str
    payload: bytes
    data_coding: int
    esm_class: int
    text: str


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: accepted (new), duplicate (an earlier message), or refused."""

    index: int
    status: str  # accepted / duplicate / refused
    message_id: int | None = None
    parts: int | None = None
    reason: str | None = None
    message: str | None = None
    held_until: float | None = None

    @classmethod
    def first_of(cls, index: int, first) -> ItemResult:
        """The answer to an item whose idempotency key an earlier message (Accepted) has."""
        return cls(index, "duplicate", first.message_id, first.part_count, reason="duplicate",
                   message="same idempotency key as an earlier message")

    def as_json(self) -> dict:
        out = {"index": self.index, "status": self.status}
        for name in ("message_id", "parts", "reason", "message", "held_until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class DoorSql:
    """The statements every accepting transaction runs, in the driver's own SQL
    (storage.driver_sql): an upsert that adds and returns in one statement, so a counter
    is changed under its row lock by exactly one statement per bucket."""

    def __init__(self, paramstyle: str):
        d = DriverSql(paramstyle)
        self.add = d.sql("INSERT INTO door_counter (client, bucket, n) VALUES (?, ?, ?)"
                         " ON CONFLICT (client, bucket) DO UPDATE SET n = door_counter.n + excluded.n"
                         " RETURNING n")
        self.sub = d.sql("UPDATE door_counter SET n = n - ? WHERE client = ? AND bucket = ?")
        # Earlier seconds' rate buckets ('s:' < bucket < 's;' are the 's:EPOCH' rows).
        self.purge = d.sql("DELETE FROM door_counter WHERE client = ? AND bucket > 's:'"
                           " AND bucket < 's;' AND bucket <> ?")
        self.tally = d.sql(
            "INSERT INTO door_tally (center, client, template, day, what, n)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (center, client, template, day, what)"
            " DO UPDATE SET n = door_tally.n + excluded.n")
        self.owner = d.sql("INSERT INTO door_message (message_id, client, center, template,"
                           " reference, created_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?)")

    @staticmethod
    def run(session, sql: str, params):
        return session.connection().exec_driver_sql(sql, params)

    def reserve(self, session, client: str, bucket: str, want: int, limit: int) -> int:
        """Take up to ``want`` from the counter under ``limit``; the number granted (atomic)."""
        if want <= 0:
            return 0
        n = self.run(session, self.add, (client, bucket, want)).scalar_one()
        granted = max(0, min(want, limit - (n - want)))
        self.give_back(session, client, bucket, want - granted)
        return granted

    def give_back(self, session, client: str, bucket: str, n: int) -> None:
        if n > 0:
            self.run(session, self.sub, (n, client, bucket))


class DoorAccept:
    """Runs the door's accepting transaction over the outbox."""

    def __init__(self, outbox, templates, words, config, encode):
        self.outbox, self.templates, self.words = outbox, templates, words
        self.config, self.encode = config, encode  # config: DoorConfig
        self.tz = ZoneInfo(outbox.config.timezone)
        self.sql = DoorSql(outbox.db.engine.dialect.paramstyle)

    def accept(self, client, raw_items: list, channel: str = "rest"):
        """Fires with one ItemResult per item, after the commit."""
        d = self.outbox.accept_lock.run(self.outbox.db.run, self.accept_sync, client, raw_items,
                                        self.outbox.clock.seconds(), channel)
        d.addCallback(self._wake)
        return d

    def _wake(self, results: list[ItemResult]) -> list[ItemResult]:
        if any(r.status == "accepted" for r in results):
            self.outbox.notify_accepted()
        return results

    def _day(self, now: float) -> str:
        return dt.datetime.fromtimestamp(now, self.tz).date().isoformat()

    def accept_sync(self, session, client, raw_items: list, now: float,
                channel: str = "rest") -> list[ItemResult]:
        results: list[ItemResult | None] = [None] * len(raw_items)
        tallies: dict[tuple[str, str, str], int] = {}

        def tally(center, template, what, n=1):
            key = (center or "-", (template or "-")[:64], what)
            tallies[key] = tallies.get(key, 0) + n

        def refuse(i, center, template, reason, message):
            results[i] = ItemResult(i, "refused", reason=reason, message=message)
            tally(center, template, reason)

        built: list[tuple[int, Outgoing, str | None]] = []
        build = self._build_smpp if channel == "smpp" else self._build_rest
        # Items without an idempotency key get this transaction's random token and their
        # index: as unique as a uuid4 each, for one os.urandom per transaction.
        token = uuid.uuid4().hex
        for i, raw in enumerate(raw_items):
            center, template = self._labels(raw, client)
            tally(center, template, "pushed")
            try:
                built.append((i, *build(client, raw, f"auto:{token}:{i}")))
            except Refused as e:
                refuse(i, center, template, e.reason, str(e))
        built = self._answer_known_keys(session, client, token, built, results, tally)
        built = self._drop_duplicates(session, built, now, refuse)
        built = self._spend_quota(session, client, built, now, refuse)
        if built:
            accepted = self.outbox.accept_in(session, [m for _, m, _ in built])
            new_rows, unused = [], 0
            for (i, m, reference), r in zip(built, accepted, strict=True):
                if isinstance(r, OutboxError):
                    unused += 1
                    reason = OUTBOX_REASONS.get(type(r), "bad_request")
                    refuse(i, m.center, m.template, reason, str(r))
                elif r.duplicate:
                    unused += 1
                    results[i] = ItemResult.first_of(i, r)
                    tally(m.center, m.template, "duplicate")
                else:
                    held = self.outbox.quiet.release_at(m.klass, now)
                    results[i] = ItemResult(i, "accepted", r.message_id, r.part_count,
                                            held_until=held if held > now else None)
                    if held > now:
                        tally(m.center, m.template, HELD)
                    new_rows.append((r.message_id, client.name, m.center, m.template,
                                     reference, now, channel))
            if new_rows:
                self.sql.run(session, self.sql.owner, new_rows)
            self.sql.give_back(session, client.name, f"d:{self._day(now)}", unused)
            self.sql.give_back(session, client.name, f"s:{int(now)}", unused)
        self._store_tallies(session, client.name, self._day(now), tallies)
        return cast(list[ItemResult], results)  # each item was refused, accepted or a duplicate

    @staticmethod
    def _labels(raw, client) -> tuple[str, str]:
        """Center and template to count an item under, before it is known to be valid."""
        if isinstance(raw, SmppSubmit):
            return client.center, "smpp"
        center = raw.get("center") if isinstance(raw, dict) else None
        template = raw.get("template") if isinstance(raw, dict) else None
        return (center if isinstance(center, str) else client.center,
                template if isinstance(template, str) else "free_text")

    @staticmethod
    def _key(client, key: str | None, auto: str) -> str:
        return f"door:{client.name}:{key or auto}"

    def _build_rest(self, client, raw, auto: str) -> tuple[Outgoing, str | None]:
        item = parse_item(raw, client, self.outbox.config.destination_formats)
        if item.center not in self.templates.signatures:
            raise Refused("center_not_allowed", "center is not served here")
        klass, name, text, logged, sensitive, max_parts = render(
            item, client, self.templates, self.config.max_free_parts)
        if self.words.find(text) is not None:
            raise Refused("illegal_keyword", "the text holds a word of the illegal keyword list")
        try:
            encoded = self.encode(text, max_parts=max_parts)
        except ValueError as e:
            raise Refused("bad_params", f"text too long: {e}") from None
        parts = tuple(EncodedPart(bytes(p), encoded.data_coding, encoded.esm_class)
                      for p in encoded.parts)
        return Outgoing(center=item.center, klass=klass, template=name, params=logged,
                        text=text, destination=item.destination,
                        idem_key=self._key(client, item.key, auto), parts=parts,
                        sensitive=sensitive), item.reference

    def _build_smpp(self, client, raw: SmppSubmit, auto: str) -> tuple[Outgoing, str | None]:
        """One submit_sm as one outbox message of one part, its bytes (and UDH) kept."""
        if client.center == "*" or client.center not in self.templates.signatures:
            raise Refused("center_not_allowed", "an SMPP client must belong to one center")
        if not client.free_text:
            raise Refused("free_text_not_allowed", "client may send templates only (use REST)")
        klass = "transaction" if "transaction" in client.classes else client.classes[0]
        if klass == "code":
            raise Refused("class_not_allowed", "verification codes come from the codes API")
        destination = normalise_mobile(raw.destination,
                                       self.outbox.config.destination_formats(client.center))
        if raw.ext and raw.ext not in client.source_exts:
            raise Refused("extension_not_allowed", "source address extension is not the client's")
        if self.words.find(raw.text) is not None:
            raise Refused("illegal_keyword", "the text holds a word of the illegal keyword list")
        return Outgoing(center=client.center, klass=klass, template="smpp", params={},
                        text=raw.text, destination=destination,
                        idem_key=self._key(client, None, auto),
                        parts=(EncodedPart(raw.payload, raw.data_coding, raw.esm_class),)), None

    def _answer_known_keys(self, session, client, token: str, built: list, results: list,
                           tally) -> list:
        """A resent item (its key committed before: the client never saw the answer) gets
        its first message, spending no quota and never refused as a duplicate text."""
        auto = self._key(client, None, f"auto:{token}:")
        keyed = [m for _, m, _ in built if not m.idem_key.startswith(auto)]
        known = self.outbox.known_in(session, keyed) if keyed else {}
        if not known:
            return built
        kept = []
        for i, m, reference in built:
            first = known.get((m.center, m.idem_key))
            if first is None:
                kept.append((i, m, reference))
                continue
            results[i] = ItemResult.first_of(i, first)
            tally(m.center, m.template, "duplicate")
        return kept

    def _drop_duplicates(self, session, built: list, now: float, refuse) -> list:
        """Refuse an item whose destination got the same text within the window (never codes)."""
        window = self.config.duplicate_window
        if not window or not built:
            return built
        candidates = [b for b in built if b[1].klass != "code"]
        seen: set[tuple[str, str, str]] = set()
        dests = sorted({m.destination for _, m, _ in candidates})
        for start in range(0, len(dests), DUP_CHUNK):
            chunk = dests[start:start + DUP_CHUNK]
            for center, destination, text in session.execute(
                    select(M.c.center, M.c.destination, M.c.text).where(
                        M.c.destination.in_(chunk), M.c.created_at > now - window,
                        M.c.klass != "code")):
                seen.add((center, destination, text))
        kept = []
        for i, m, reference in built:
            key = (m.center, m.destination, m.text)
            if m.klass != "code" and key in seen:
                refuse(i, m.center, m.template, "duplicate",
                       f"same text to this destination within {int(window)} s")
                continue
            if m.klass != "code":
                seen.add(key)  # a twin later in the same request is a duplicate too
            kept.append((i, m, reference))
        return kept

    def _spend_quota(self, session, client, built, now, refuse):
        """Reserve the daily quota then the per-second rate; items beyond them are refused."""
        if not built:
            return built
        sql, today, second = self.sql, f"d:{self._day(now)}", f"s:{int(now)}"
        day = sql.reserve(session, client.name, today, len(built), client.daily_quota)
        sql.run(session, sql.purge, (client.name, second))
        rate = sql.reserve(session, client.name, second, day, client.rate_per_second)
        sql.give_back(session, client.name, today, day - rate)
        for i, m, _ in built[rate:day]:
            refuse(i, m.center, m.template, "rate_limited",
                   f"more than {client.rate_per_second} messages per second; retry later")
        for i, m, _ in built[day:]:
            refuse(i, m.center, m.template, "quota_exceeded",
                   f"daily quota of {client.daily_quota} messages reached")
        return built[:rate]

    def _store_tallies(self, session, client: str, day: str, tallies: dict) -> None:
        rows = [(center, client, template, day, what, n)  # sorted: one lock order
                for (center, template, what), n in sorted(tallies.items())]
        if rows:
            self.sql.run(session, self.sql.tally, rows)
