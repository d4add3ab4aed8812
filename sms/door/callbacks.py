"""Receipts and MO owed to door clients: recorded as ``door_event`` rows in the same
transaction that notices them, then pushed until acknowledged.

``Notifier.sweep`` turns door messages that reached a final state into one event each
(the rolled-up state; per part too for clients that asked), and marks them notified, in
one transaction: an event is never lost and never recorded twice. ``CallbackPusher`` POSTs
HTTP events to the client's URL, signed like the client's own requests (sms.door.auth), and
retries with backoff until a 2xx; after ``callback_max_attempts`` the event is dead-lettered
(``hotline door dead-letters``). At least once: the receiver drops repeats by ``id``.
SMPP events wait for the client's receiver bind (sms.door.smpp_server).
"""
from __future__ import annotations

import json
import random
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select, update
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.error import (ConnectError, ConnectingCancelledError, ConnectionClosed,
                                    TimeoutError)
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import RequestTransmissionFailed, ResponseFailed, ResponseNeverReceived

from sms.door.auth import sign
from sms.door.tables import DoorEvent, DoorMessage
from sms.outbox.sql import M, P
from sms.outbox.states import FINAL
from storage.driver_sql import DriverSql
from storage.models import table_of

log = Logger(namespace="hotline.sms.door.callbacks")
E = table_of(DoorEvent)
DM = table_of(DoorMessage)
PENDING, ACKED, DEAD = "pending", "acked", "dead"
KEEP_ACKED = 7 * 86400.0  # acknowledged events are kept a week, then deleted
PURGE_EVERY = 3600.0
# What a callback POST may fail with: each means "not acknowledged, try again later".
TRANSPORT_ERRORS = (ConnectError, ConnectingCancelledError, ConnectionClosed, TimeoutError,
                    ResponseFailed, ResponseNeverReceived, RequestTransmissionFailed)


def event_row(client, channel: str, kind: str, dedup_id: str, payload: dict, now: float):
    return dict(client=client, channel=channel, kind=kind, dedup_id=dedup_id,
                payload=json.dumps(payload, ensure_ascii=False), state=PENDING, attempts=0,
                next_at=now, created_at=now)


EVENT_COLUMNS = ("client", "channel", "kind", "dedup_id", "payload", "state", "attempts",
                 "next_at", "created_at")
INSERT_EVENT = (f"INSERT INTO door_event ({', '.join(EVENT_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT DO NOTHING")


def insert_events(session, rows: list[dict]) -> None:
    """Insert events; one whose dedup id exists already is skipped (a replayed sweep).
    One driver-SQL executemany: a sweep records a receipt per message sent, and a Core
    statement per row cost the single writer ~0.2 ms each (storage.driver_sql)."""
    if not rows:
        return
    connection = session.connection()
    connection.exec_driver_sql(DriverSql(connection.dialect.paramstyle).sql(INSERT_EVENT),
                               [tuple(row[c] for c in EVENT_COLUMNS) for row in rows])


def sweep(session, clients: dict, now: float, limit: int = 2000) -> int:
    """Record a receipt event for each door message newly final; the number recorded."""
    rows = session.execute(
        select(DM.c.message_id, DM.c.client, DM.c.reference, DM.c.channel, M.c.state,
               M.c.error, M.c.part_count, M.c.final_at, M.c.destination)
        .join(M, M.c.id == DM.c.message_id)
        .where(DM.c.notified.is_(None), M.c.state.in_(sorted(FINAL))).limit(limit)).all()
    if not rows:
        return 0
    parts: dict[int, list] = {}
    want_parts = [r.message_id for r in rows
                  if clients.get(r.client) is not None and clients[r.client].callback_parts]
    if want_parts:
        for p in session.execute(select(P.c.message_id, P.c.seq, P.c.state, P.c.error_code,
                                        P.c.done_at).where(P.c.message_id.in_(want_parts))):
            parts.setdefault(p.message_id, []).append(p)
    events = []
    for r in rows:
        client = clients.get(r.client)
        channel = "smpp" if r.channel == "smpp" else "http"
        if client is None or (channel == "http" and not client.callback_url):
            continue  # nobody to tell: marked notified all the same
        state = "cancelled" if r.error == "cancelled" else r.state
        body = {"id": f"r:{r.message_id}", "type": "receipt", "message_id": r.message_id,
                "reference": r.reference, "state": state, "error": r.error,
                "parts": r.part_count, "done_at": r.final_at}
        if channel == "smpp":
            body["destination"] = r.destination  # the deliver_sm's source address
        events.append(event_row(r.client, channel, "receipt", body["id"], body, now))
        for p in parts.get(r.message_id, ()) if channel == "http" else ():
            pid = f"p:{r.message_id}:{p.seq}"
            events.append(event_row(r.client, channel, "part", pid, {
                "id": pid, "type": "part_receipt", "message_id": r.message_id,
                "reference": r.reference, "seq": p.seq, "state": p.state,
                "error": p.error_code, "done_at": p.done_at}, now))
    insert_events(session, events)
    for state in {r.state for r in rows}:
        ids = [r.message_id for r in rows if r.state == state]
        session.execute(update(DM).where(DM.c.message_id.in_(ids)).values(notified=state))
    return len(events)


def claim_due(session, channel: str, now: float, hold: float, limit: int,
              client: str | None = None) -> list:
    """Due pending events, pushed ``hold`` seconds ahead so no other pass takes them now."""
    q = select(E.c.id, E.c.client, E.c.dedup_id, E.c.payload, E.c.attempts).where(
        E.c.channel == channel, E.c.state == PENDING, E.c.next_at <= now)
    if client is not None:
        q = q.where(E.c.client == client)
    rows = session.execute(q.order_by(E.c.id).limit(limit)).all()
    if rows:
        session.execute(update(E).where(E.c.id.in_([r.id for r in rows])).values(
            next_at=now + hold))
    return rows


def settle(session, acked: list[int], failed: list[tuple[int, int, float, str, bool]],
           now: float) -> None:
    """Acknowledged ones done; failed ones (id, attempts, next_at, error, dead) rescheduled."""
    if acked:
        session.execute(update(E).where(E.c.id.in_(acked)).values(state=ACKED, acked_at=now))
    for event_id, attempts, next_at, error, dead in failed:
        session.execute(update(E).where(E.c.id == event_id).values(
            attempts=attempts, next_at=next_at, last_error=error[:128],
            state=DEAD if dead else PENDING))


def purge_acked(session, before: float) -> int:
    """Acknowledged events older than ``before`` are deleted: they hold destinations and MO
    texts, and once acknowledged nobody needs them (dead letters stay for the operator)."""
    return session.execute(E.delete().where(E.c.state == ACKED, E.c.acked_at < before)).rowcount


def dead_letters(session, client: str | None = None, limit: int = 100) -> list[dict]:
    q = select(E.c.id, E.c.client, E.c.kind, E.c.dedup_id, E.c.attempts, E.c.last_error,
               E.c.created_at).where(E.c.state == DEAD)
    if client:
        q = q.where(E.c.client == client)
    return [dict(r._mapping) for r in session.execute(q.order_by(E.c.id).limit(limit))]


def backoff(config, attempts: int, rng=random.random) -> float:
    """Exponential with jitter (50-100 %), capped: a client that is down is not hammered."""
    delay = min(config.callback_retry_max, config.callback_retry_base * 2 ** (attempts - 1))
    return delay * (0.5 + rng() / 2)


class CallbackPusher(Service):
    """Sweeps final states into events and POSTs the HTTP ones; one pass per ``interval``."""

    name: str | None = "door-callbacks"  # type: ignore[assignment]

    def __init__(self, db, directory, http, clock, config, environ, interval: float = 0.5,
                 batch: int = 200, concurrency: int = 16, lock=None):
        self.db, self.directory, self.http, self.clock = db, directory, http, clock
        # SQLite has one writer: its writes take the outbox's lock, as the outbox's own do.
        self.lock = lock
        self.config, self.environ, self.interval, self.batch = config, environ, interval, batch
        # A receiver is not hit with a whole batch of connections at once.
        self._posts = DeferredSemaphore(concurrency)
        self._loop = LoopingCall(self._guarded_tick)
        self._loop.clock = clock
        self.woken: list = []  # told after each sweep that recorded events (the SMPP server)
        self._purged_at: float | None = None

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: log.failure("door callback loop stopped", f))

    def stopService(self):
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def tick(self) -> Deferred:
        return Deferred.fromCoroutine(self._tick())

    def _guarded_tick(self) -> Deferred:
        """One pass; a failed pass is logged and the next one runs all the same (the
        events it claimed are due again after their hold)."""
        return self.tick().addErrback(lambda f: log.failure("door callback pass failed", f))

    async def _tick(self) -> None:
        directory = await self.directory.fresh()
        now = self.clock.seconds()
        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            await self._write(purge_acked, now - KEEP_ACKED)
        recorded = await self._write(sweep, directory.by_name, now)
        if recorded:
            for wake in list(self.woken):
                wake()
        rows = await self._write(claim_due, "http", now, 2 * self.config.callback_timeout + 1,
                                 self.batch)
        if not rows:
            return
        outcomes = await gatherResults(
            [self._posts.run(self._post_now, directory, r) for r in rows])
        now = self.clock.seconds()
        acked = [r.id for r, (ok, _) in zip(rows, outcomes, strict=True) if ok]
        failed = []
        for r, (ok, error) in zip(rows, outcomes, strict=True):
            if not ok:
                attempts = r.attempts + 1
                dead = attempts >= self.config.callback_max_attempts
                failed.append((r.id, attempts, now + backoff(self.config, attempts), error,
                               dead))
                if dead:
                    log.warn("door callback {id} to client {client} dead-lettered after "
                             "{n} attempts: {error}", id=r.dedup_id, client=r.client,
                             n=attempts, error=error)
        await self._write(settle, acked, failed, now)

    def _write(self, fn, *args) -> Deferred:
        if self.lock is None:
            return self.db.run(fn, *args)
        return self.lock.run(self.db.run, fn, *args)

    def _post_now(self, directory, row) -> Deferred[tuple[bool, str]]:
        return Deferred.fromCoroutine(self._post(directory, row))

    async def _post(self, directory, row) -> tuple[bool, str]:
        client = directory.by_name.get(row.client)
        if client is None or not client.callback_url:
            return False, "no callback URL"
        secret = client.secret(self.environ)
        if secret is None:
            return False, "no secret in the environment"
        body = row.payload.encode()
        stamp, nonce = str(int(self.clock.seconds())), secrets.token_hex(8)
        target = urlsplit(client.callback_url)
        uri = target.path + (f"?{target.query}" if target.query else "")
        headers = {b"content-type": [b"application/json; charset=utf-8"],
                   b"x-client-id": [client.name.encode()], b"x-timestamp": [stamp.encode()],
                   b"x-nonce": [nonce.encode()], b"x-event-id": [row.dedup_id.encode()],
                   b"x-signature": [sign(secret, "POST", uri or "/", stamp, nonce,
                                         body).encode()]}
        try:
            d = self.http.post(client.callback_url, data=body, headers=headers)
            d.addTimeout(self.config.callback_timeout, self.clock)
            response = await d
            await response.content()
        except TRANSPORT_ERRORS as e:
            return False, type(e).__name__
        if 200 <= response.code < 300:
            return True, ""
        return False, f"HTTP {response.code}"


def store_mo(session, client, mo, now: float) -> None:
    """An MO sent to a client's extension: kept as an event for that client (and in sms_mo)."""
    from sms.tables import SmsMo

    at = mo.received_at
    received = at.timestamp() if hasattr(at, "timestamp") else float(at or now)
    mo_id = session.execute(table_of(SmsMo).insert().values(
        center=client.center if client.center != "*" else None, source=mo.source,
        destination=mo.destination, text=mo.text[:500], smsc=mo.smsc, received_at=received,
        keyword=None, outcome=f"door:{client.name}"[:32])).inserted_primary_key[0]
    channel = "http" if client.callback_url else "smpp"
    body = {"id": f"mo:{mo_id}", "type": "mo", "source": mo.source,
            "destination": mo.destination, "text": mo.text[:500], "received_at": received}
    insert_events(session, [event_row(client.name, channel, "mo", body["id"], body, now)])
