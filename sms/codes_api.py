"""The verification-code HTTP API for the platform's other channels (web portal, app).

``POST /v1/codes`` {center, account_no, purpose} issues a code through
core_client's rules and enqueues it to the account's registered mobile at the
highest priority; it answers 202 {code_id, expires_at} once the SMS is committed
in the outbox. The answer is the same when the account does not exist or its
mobile has had its codes for the hour or day (nothing is sent then), so the API
is no account oracle; every request counts against the account's per-minute
throttle (429) before the core is asked, known account or not.
``POST /v1/codes/verify`` {center, account_no, purpose, code} answers 200 or 400;
a code verifies only through the client that asked for it. A client listed in
``[http.client_centers]`` may ask only for its centers (403 otherwise).

Each client system authenticates with its secret from [http.clients], either as
``Authorization: Bearer <secret>`` or by signing: ``X-Client-Id``,
``X-Timestamp`` (epoch seconds), ``X-Nonce`` (unique per request, at most 64
printable ASCII characters) and ``X-Signature`` = hex HMAC-SHA256(secret,
"METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nBODY") within a 5-minute window; a nonce is
accepted once. Every header must be ASCII: anything else is 401, never a hang.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from common.masking import mask_account, mask_mobile
from core_client.signing import NonceMemory, SignatureError, ascii_header, fresh
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
MAX_NONCE = 64


class ApiError(Exception):
    """An HTTP error answer: status, a short machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def authenticate(clients: dict[str, str], request, body: bytes, now: float,
                 nonces: NonceMemory) -> str:
    """The client id the request proves it is, or ApiError 401."""
    try:
        return _authenticate(clients, request, body, now, nonces)
    except SignatureError as e:
        raise ApiError(401, "unauthorized", str(e)) from None


def _authenticate(clients: dict[str, str], request, body: bytes, now: float,
                  nonces: NonceMemory) -> str:
    auth = ascii_header(request.getHeader(b"authorization")) or ""
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip().encode()
        for client, secret in clients.items():
            if hmac.compare_digest(token, secret.encode()):
                return client
        raise SignatureError("unknown bearer secret")
    client, stamp, nonce, signature = (ascii_header(request.getHeader(name)) or "" for name in (
        b"x-client-id", b"x-timestamp", b"x-nonce", b"x-signature"))
    if not (client and stamp and nonce and signature):
        raise SignatureError("send a bearer secret or a signed request with a nonce")
    if len(nonce) > MAX_NONCE:
        raise SignatureError("X-Nonce is too long")
    secret = clients.get(client)
    fresh(stamp, now, SIGNATURE_WINDOW)
    if secret is None:
        raise SignatureError("unknown client or stale timestamp")
    message = b"\n".join([request.method, request.path, stamp.encode(), nonce.encode(), body])
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise SignatureError("bad signature")
    nonces.first_use(f"{client}\n{nonce}", now)
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
        gone: list = []  # fills when the client goes away or the answer is sent
        request.notifyFinish().addBoth(gone.append)
        d = Deferred.fromCoroutine(self.api.serve(request, self.handler, gone))
        d.addErrback(self._crashed, request, gone)
        return NOT_DONE_YET

    @staticmethod
    def _crashed(failure, request, gone: list) -> None:
        """Whatever went wrong, the client gets an answer and its connection back."""
        log.failure("codes API request crashed", failure)
        if not gone:
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            request.write(b'{"error": "internal", "message": "internal error"}')
            request.finish()


class CodesApi:
    """The two endpoints over VerificationCodes and the outbox."""

    def __init__(self, codes, outbox, cores: dict, clients: dict[str, str], clock, ttl: int,
                 client_centers: dict[str, tuple[str, ...]] | None = None):
        self.codes, self.outbox, self.cores, self.clients = codes, outbox, cores, clients
        self.client_centers = client_centers or {}
        self.clock, self.ttl = clock, ttl
        self.nonces = NonceMemory(SIGNATURE_WINDOW)

    async def serve(self, request, handler, gone: list) -> None:
        try:
            body = request.content.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise ApiError(413, "too_large", "body too large")
            client = authenticate(self.clients, request, body, self.clock.seconds(),
                                  self.nonces)
            status, payload = await handler(client, body)
            headers = {}
        except ApiError as e:
            status, payload, headers = e.status, {"error": e.code, "message": e.message}, e.headers
        if gone:
            return  # the client went away
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        for k, v in headers.items():
            request.setHeader(k.encode(), v.encode())
        request.write(json.dumps(payload, ensure_ascii=False).encode())
        request.finish()

    def _check_center(self, client: str, center: str) -> None:
        allowed = self.client_centers.get(client)
        if allowed is not None and center not in allowed:
            raise ApiError(403, "forbidden", "this client may not ask for this center")

    def _accepted(self) -> tuple[int, dict]:
        """The answer for an account that exists or not, a code sent or not."""
        expires = dt.datetime.fromtimestamp(self.clock.seconds() + self.ttl)
        return 202, {"code_id": secrets.token_hex(16), "expires_at": expires.isoformat()}

    async def issue(self, client: str, body: bytes) -> tuple[int, dict]:
        data = parse_body(body, self.cores, with_code=False)
        self._check_center(client, data["center"])
        wait = await self.codes.throttle(data["center"], data["account_no"])
        if wait is not None:
            raise ApiError(429, "rate_limited", "too many code requests for this account",
                           {"Retry-After": str(wait)})
        try:
            issued = await self.codes.issue(data["center"], data["account_no"], data["purpose"],
                                            client)
        except (CodeRateLimited, AccountNotFound) as e:
            log.info("no code sent for {account} (client {client}): {why}",
                     account=mask_account(data["account_no"]), client=client,
                     why=type(e).__name__)
            return self._accepted()
        except CoreError:
            raise ApiError(503, "core_unavailable", "the core system is unavailable") from None
        try:
            await self.outbox.send(data["center"], "verification_code", {
                "code": issued.code, "purpose": PURPOSE_TEXT.get(issued.purpose, "身份验证"),
                "minutes": max(1, self.ttl // 60)}, issued.mobile, f"code:{issued.code_id}")
        except BadDestination as e:  # the core's data is at fault, not the caller: answer alike
            log.warn("no code sent for {account} (client {client}): the registered mobile "
                     "is no valid destination: {why}", account=mask_account(issued.account_no),
                     client=client, why=str(e))
            return self._accepted()
        except OutboxError as e:
            raise ApiError(503, "not_sent", type(e).__name__) from None
        log.info("code {id} for {account} queued to {mobile} for client {client}",
                 id=issued.code_id, account=mask_account(issued.account_no),
                 mobile=mask_mobile(issued.mobile), client=client)
        return 202, {"code_id": issued.code_id, "expires_at": issued.expires_at.isoformat()}

    async def verify(self, client: str, body: bytes) -> tuple[int, dict]:
        data = parse_body(body, self.cores, with_code=True)
        self._check_center(client, data["center"])
        try:
            await self.codes.verify(data["center"], data["account_no"], data["purpose"],
                                    data["code"], client)
        except CodeInvalid:
            raise ApiError(400, "code_invalid",
                           "the code is wrong, expired, used or out of attempts") from None
        except CoreError:
            raise ApiError(503, "core_unavailable", "the core system is unavailable") from None
        return 200, {"verified": True}


def make_resource(codes, outbox, cores: dict, clients: dict[str, str], clock,
                  ttl: int, client_centers: dict[str, tuple[str, ...]] | None = None
                  ) -> Resource:
    """The ``/v1`` resource to mount at the HTTP root: ``/v1/codes`` and ``/v1/codes/verify``."""
    api = CodesApi(codes, outbox, cores, clients, clock, ttl, client_centers)
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
