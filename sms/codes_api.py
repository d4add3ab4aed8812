"""The verification-code HTTP API for the platform's other channels (web portal, app).

``POST /v1/codes`` {center, account_no, purpose} issues a code through
core_client's rules and enqueues it to the account's registered mobile at the
highest priority; it answers 202 only after the SMS is committed in the outbox.
``POST /v1/codes/verify`` {center, account_no, purpose, code} answers 200 or 400.

Each client system authenticates with its secret from [http.clients], either as
``Authorization: Bearer <secret>`` or by signing: ``X-Client-Id``,
``X-Timestamp`` and ``X-Signature`` = hex HMAC-SHA256(secret,
"METHOD\\nPATH\\nTIMESTAMP\\nBODY") within a 5-minute window.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from common.masking import mask_account, mask_mobile
from core_client.interface import (
    AccountNotFound,
    CodeInvalid,
    CodeRateLimited,
    CoreError,
)
from sms.outbox.records import BadDestination, OutboxError

log = Logger(namespace="hotline.sms.codes_api")

SIGNATURE_WINDOW = 300
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,32}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CODE = re.compile(r"\d{4,8}")
PURPOSE_TEXT = {"login": "登录", "change_password": "修改密码", "withdrawal": "提取业务",
                "change_mobile": "变更手机号", "loan": "贷款业务"}
MAX_BODY = 16 * 1024


class ApiError(Exception):
    """An HTTP error answer: status, a short machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def authenticate(clients: dict[str, str], request, body: bytes, now: float) -> str:
    """The client id the request proves it is, or ApiError 401."""
    auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip().encode()
        for client, secret in clients.items():
            if hmac.compare_digest(token, secret.encode()):
                return client
        raise ApiError(401, "unauthorized", "unknown bearer secret")
    client = (request.getHeader(b"x-client-id") or b"").decode("latin-1")
    stamp = (request.getHeader(b"x-timestamp") or b"").decode("latin-1")
    signature = (request.getHeader(b"x-signature") or b"").decode("latin-1")
    if not (client and stamp and signature):
        raise ApiError(401, "unauthorized", "send a bearer secret or a signed request")
    secret = clients.get(client)
    try:
        skew = abs(now - float(stamp))
    except ValueError:
        raise ApiError(401, "unauthorized", "X-Timestamp must be epoch seconds") from None
    if secret is None or skew > SIGNATURE_WINDOW:
        raise ApiError(401, "unauthorized", "unknown client or stale timestamp")
    message = b"\n".join([request.method, request.path, stamp.encode(), body])
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(401, "unauthorized", "bad signature")
    return client


def parse_body(body: bytes, cores: dict, *, with_code: bool) -> dict:
    """The validated JSON fields, or ApiError 400 naming the first problem."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    fields = ("center", "account_no", "purpose") + (("code",) if with_code else ())
    unknown = set(data) - set(fields)
    if unknown:
        raise ApiError(400, "bad_field", f"unknown fields: {', '.join(sorted(unknown))}")
    for name in fields:
        if not isinstance(data.get(name), str) or not data[name]:
            raise ApiError(400, "bad_field", f"{name} is required and must be a string")
    if data["center"] not in cores:
        raise ApiError(400, "bad_field", "center is not served here")
    if not _ACCOUNT.fullmatch(data["account_no"]):
        raise ApiError(400, "bad_field", "account_no must be 1-32 letters or digits")
    if not _PURPOSE.fullmatch(data["purpose"]):
        raise ApiError(400, "bad_field", "purpose must be lower-case letters, digits and _")
    if with_code and not _CODE.fullmatch(data["code"]):
        raise ApiError(400, "bad_field", "code must be 4-8 digits")
    return data


class _Endpoint(Resource):
    isLeaf = True

    def __init__(self, api: CodesApi, handler):
        super().__init__()
        self.api, self.handler = api, handler

    def render_POST(self, request):
        d = Deferred.fromCoroutine(self.api.serve(request, self.handler))
        d.addErrback(lambda f: log.failure("codes API request crashed", f))
        return NOT_DONE_YET


class CodesApi:
    """The two endpoints over VerificationCodes and the outbox."""

    def __init__(self, codes, outbox, cores: dict, clients: dict[str, str], clock, ttl: int):
        self.codes, self.outbox, self.cores, self.clients = codes, outbox, cores, clients
        self.clock, self.ttl = clock, ttl

    async def serve(self, request, handler) -> None:
        finished = []
        request.notifyFinish().addBoth(finished.append)
        try:
            body = request.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise ApiError(413, "too_large", "body too large")
            client = authenticate(self.clients, request, body, self.clock.seconds())
            status, payload = await handler(client, body)
            headers = {}
        except ApiError as e:
            status, payload, headers = e.status, {"error": e.code, "message": e.message}, e.headers
        if finished:
            return  # the client went away
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        for k, v in headers.items():
            request.setHeader(k.encode(), v.encode())
        request.write(json.dumps(payload, ensure_ascii=False).encode())
        request.finish()

    async def issue(self, client: str, body: bytes) -> tuple[int, dict]:
        data = parse_body(body, self.cores, with_code=False)
        try:
            issued = await self.codes.issue(data["center"], data["account_no"], data["purpose"])
        except CodeRateLimited as e:
            raise ApiError(429, "rate_limited", "too many codes for this mobile",
                           {"Retry-After": str(e.retry_after)}) from None
        except AccountNotFound:
            raise ApiError(404, "not_found", "no such account") from None
        except CoreError:
            raise ApiError(503, "core_unavailable", "the core system is unavailable") from None
        try:
            await self.outbox.send(data["center"], "verification_code", {
                "code": issued.code, "purpose": PURPOSE_TEXT.get(issued.purpose, "身份验证"),
                "minutes": max(1, self.ttl // 60)}, issued.mobile, f"code:{issued.code_id}")
        except BadDestination as e:
            raise ApiError(422, "bad_destination", f"the registered mobile: {e}") from None
        except OutboxError as e:
            raise ApiError(503, "not_sent", type(e).__name__) from None
        log.info("code {id} for {account} queued to {mobile} for client {client}",
                 id=issued.code_id, account=mask_account(issued.account_no),
                 mobile=mask_mobile(issued.mobile), client=client)
        return 202, {"code_id": issued.code_id, "mobile_masked": mask_mobile(issued.mobile),
                     "expires_at": issued.expires_at.isoformat()}

    async def verify(self, client: str, body: bytes) -> tuple[int, dict]:
        data = parse_body(body, self.cores, with_code=True)
        try:
            await self.codes.verify(data["center"], data["account_no"], data["purpose"],
                                    data["code"])
        except CodeInvalid:
            raise ApiError(400, "code_invalid",
                           "the code is wrong, expired, used or out of attempts") from None
        except CoreError:
            raise ApiError(503, "core_unavailable", "the core system is unavailable") from None
        return 200, {"verified": True}


def make_resource(codes, outbox, cores: dict, clients: dict[str, str], clock,
                  ttl: int) -> Resource:
    """The ``/v1`` resource to mount at the HTTP root: ``/v1/codes`` and ``/v1/codes/verify``."""
    api = CodesApi(codes, outbox, cores, clients, clock, ttl)
    issue = _Endpoint(api, api.issue)
    verify = _Endpoint(api, api.verify)

    class Codes(Resource):
        def getChild(self, name, request):
            if name == b"verify" and not request.postpath:
                return verify
            return Resource.getChild(self, name, request)

        def render_POST(self, request):
            return issue.render_POST(request)

    v1 = Resource()
    v1.putChild(b"codes", Codes())
    return v1
