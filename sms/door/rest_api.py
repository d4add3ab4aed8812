"""The door's REST send API under ``/v1/messages`` (openapi: sms/door/openapi.yaml).

``POST /v1/messages`` one message; ``POST /v1/messages/batch`` {messages: [...]} up to
``max_batch`` in one transaction with a result per item; ``GET /v1/messages/{id}`` its
state; ``DELETE /v1/messages/{id}`` cancels it while still queued. A 2xx is sent only after
the commit. Every request is answered, whatever fails (the errback answers 500).
"""
from __future__ import annotations

import json

from sqlalchemy import select, update
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from sms.door.auth import AuthError
from sms.door.tables import DoorMessage
from sms.outbox.sql import M, P
from sms.outbox.states import FAILED, QUEUED
from storage.models import table_of

log = Logger(namespace="hotline.sms.door.rest")
DM = table_of(DoorMessage)
REFUSAL_STATUS = {"rate_limited": 429, "quota_exceeded": 429}


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def _json_body(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "bad_json", "the body must be JSON (UTF-8)") from None


def _message_state(session, client: str, message_id: int) -> dict | None:
    row = session.execute(
        select(M.c.id, M.c.center, M.c.klass, M.c.template, M.c.state, M.c.error,
               M.c.part_count, M.c.created_at, M.c.submitted_at, M.c.final_at, DM.c.reference)
        .join(DM, DM.c.message_id == M.c.id)
        .where(M.c.id == message_id, DM.c.client == client)).first()
    if row is None:
        return None
    parts = [dict(seq=p.seq, state=p.state, error=p.error_code, done_at=p.done_at)
             for p in session.execute(select(P.c.seq, P.c.state, P.c.error_code, P.c.done_at)
                                      .where(P.c.message_id == message_id).order_by(P.c.seq))]
    out = dict(row._mapping)
    out["message_id"] = out.pop("id")
    out["class"] = out.pop("klass")
    if out["state"] == FAILED and out["error"] == "cancelled":
        out["state"] = "cancelled"
    out["parts"] = parts
    return out


def _cancel(session, client: str, message_id: int, now: float) -> str | None:
    """'cancelled', the state it is already past, or None when not the client's message."""
    owned = session.execute(select(DM.c.message_id).where(
        DM.c.message_id == message_id, DM.c.client == client)).first()
    if owned is None:
        return None
    done = session.execute(update(M).where(M.c.id == message_id, M.c.state == QUEUED).values(
        state=FAILED, error="cancelled", final_at=now)).rowcount
    if done:
        session.execute(update(P).where(P.c.message_id == message_id, P.c.state == QUEUED)
                        .values(state=FAILED, error_code="cancelled", done_at=now))
        return "cancelled"
    return session.execute(select(M.c.state).where(M.c.id == message_id)).scalar_one()


class SendApi:
    """The handlers; ``serve`` authenticates, runs one, and always answers."""

    def __init__(self, auth, accept, outbox, config, clock):
        self.auth, self.accept, self.outbox = auth, accept, outbox
        self.config, self.clock = config, clock

    async def serve(self, request, gone: list, handler, *args) -> None:
        headers: dict = {}
        try:
            body = request.content.read(self.config.max_body + 1)
            if len(body) > self.config.max_body:
                raise HttpError(413, "too_large", "the body is larger than the API accepts")
            client = await self.auth.client_for(request, body)
            status, payload = await handler(client, body, *args)
        except AuthError as e:
            status, payload = e.status, {"error": e.code, "message": str(e)}
        except HttpError as e:
            status, payload, headers = e.status, {"error": e.code, "message": str(e)}, e.headers
        if not gone:
            answer(request, status, payload, headers)

    async def send_one(self, client, body: bytes):
        [result] = await self.accept.accept(client, [_json_body(body)])
        out = result.as_json()
        out.pop("index")
        if result.status == "accepted":
            return 202, out
        if result.status == "duplicate":
            return 200, out
        status = REFUSAL_STATUS.get(result.reason, 422)
        if status == 429:
            raise HttpError(429, result.reason, result.message, {"Retry-After": "1"})
        return status, {"error": result.reason, "message": result.message, "status": "refused"}

    async def send_batch(self, client, body: bytes):
        data = _json_body(body)
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise HttpError(400, "bad_request", "the body must be {\"messages\": [...]} with "
                                                "at least one message")
        if len(items) > self.config.max_batch:
            raise HttpError(413, "batch_too_large",
                            f"at most {self.config.max_batch} messages per batch")
        results = await self.accept.accept(client, items)
        summary = {"accepted": 0, "duplicate": 0, "refused": 0}
        for r in results:
            summary[r.status] += 1
        return 200, {**summary, "results": [r.as_json() for r in results]}

    async def query(self, client, _body: bytes, message_id: int):
        state = await self.outbox.db.run(_message_state, client.name, message_id)
        if state is None:
            raise HttpError(404, "not_found", "no such message of this client")
        return 200, state

    async def cancel(self, client, _body: bytes, message_id: int):
        outcome = await self.outbox.lock.run(self.outbox.db.run, _cancel, client.name,
                                             message_id, self.clock.seconds())
        if outcome is None:
            raise HttpError(404, "not_found", "no such message of this client")
        if outcome != "cancelled":
            raise HttpError(409, "not_queued", f"the message is already {outcome}")
        return 200, {"message_id": message_id, "state": "cancelled"}


def answer(request, status: int, payload: dict, headers: dict | None = None) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    for k, v in (headers or {}).items():
        request.setHeader(k.encode(), v.encode())
    request.write(json.dumps(payload, ensure_ascii=False).encode())
    request.finish()


def _run(api: SendApi, request, handler, *args):
    gone: list = []  # fills when the client goes away or the answer is sent
    request.notifyFinish().addBoth(gone.append)
    d = Deferred.fromCoroutine(api.serve(request, gone, handler, *args))
    d.addErrback(_crashed, request, gone)
    return NOT_DONE_YET


def _crashed(failure, request, gone: list) -> None:
    """Whatever went wrong, the client gets an answer."""
    log.failure("door API request crashed", failure)
    if not gone and not request.finished:
        answer(request, 500, {"error": "internal", "message": "the request failed"})


class _Message(Resource):
    isLeaf = True

    def __init__(self, api: SendApi, message_id: int):
        super().__init__()
        self.api, self.message_id = api, message_id

    def render_GET(self, request):
        return _run(self.api, request, self.api.query, self.message_id)

    def render_DELETE(self, request):
        return _run(self.api, request, self.api.cancel, self.message_id)


class _Batch(Resource):
    isLeaf = True

    def __init__(self, api: SendApi):
        super().__init__()
        self.api = api

    def render_POST(self, request):
        return _run(self.api, request, self.api.send_batch)


class Messages(Resource):
    """``/v1/messages``: POST one; children ``batch`` and ``{id}``."""

    def __init__(self, api: SendApi):
        super().__init__()
        self.api = api
        self.batch = _Batch(api)

    def getChild(self, name, request):
        if request.postpath:
            return Resource.getChild(self, name, request)
        if name == b"batch":
            return self.batch
        if name.isdigit() and len(name) <= 12:
            return _Message(self.api, int(name))
        return Resource.getChild(self, name, request)

    def render_POST(self, request):
        return _run(self.api, request, self.api.send_one)
