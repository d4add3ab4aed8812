"""The HTTP backend: a center's core system over HTTPS/JSON, as written down in openapi.yaml.

Layers: ``wire`` (JSON shapes) and ``signing`` are pure; ``HttpCore._attempt``
is one signed exchange with a timeout on the injected clock; ``HttpCore._call``
adds the circuit breaker and jittered retries, for idempotent operations only
(never for password verification or change, which the core counts).
"""
from __future__ import annotations

import json
import random
import secrets
from typing import Any
from collections.abc import Callable, Sequence
from urllib.parse import urlencode, urlsplit

from twisted.internet import defer, error
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web.client import (
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)

from core_client import signing, wire
from core_client.breaker import CircuitBreaker
from core_client.interface import (
    Account,
    AccountEvent,
    Balance,
    CoreError,
    CoreProtocolError,
    CoreUnavailable,
    Detail,
    Loan,
)

log = Logger(namespace="hotline.core.http")

_NETWORK_ERRORS = (error.ConnectError, error.ConnectionLost, error.ConnectionDone,
                   error.DNSLookupError, error.TimeoutError, ResponseFailed,
                   ResponseNeverReceived, RequestTransmissionFailed)


class HttpCore:
    """CoreClient over HTTP. ``client`` is a treq ``HTTPClient`` (or ``StubTreq`` in tests)."""

    def __init__(self, center: str, base_url: str, key: str | bytes, clock: Any, client: Any, *,
                 timeout: float = 3.0, retries: int = 2, backoff: float = 0.2,
                 breaker: CircuitBreaker | None = None,
                 jitter: Callable[[], float] = random.random,
                 nonce: Callable[[], str] = lambda: secrets.token_hex(16)):
        self.center = center
        parts = urlsplit(base_url.rstrip("/"))
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path
        self._key = key.encode() if isinstance(key, str) else key
        self._clock, self._client = clock, client
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.breaker = breaker or CircuitBreaker(clock)
        self._jitter, self._nonce = jitter, nonce

    # -- CoreClient -------------------------------------------------------------------------

    async def find_account(self, *, account_no: str | None = None,
                           id_number: str | None = None) -> Account:
        if (account_no is None) == (id_number is None):
            raise ValueError("give exactly one of account_no and id_number")
        body = {"account_no": account_no} if account_no is not None else {"id_number": id_number}
        return wire.account_from_json(
            await self._call("find_account", "POST", "/accounts/search", body=body,
                             idempotent=True))

    async def verify_password(self, account_no: str, password: str) -> None:
        await self._call("verify_password", "POST", f"/accounts/{account_no}/password/verify",
                         body={"password": password}, idempotent=False)

    async def change_password(self, account_no: str, old: str, new: str) -> None:
        await self._call("change_password", "POST", f"/accounts/{account_no}/password/change",
                         body={"old": old, "new": new}, idempotent=False)

    async def balance(self, account_no: str) -> Balance:
        return wire.balance_from_json(
            await self._call("balance", "GET", f"/accounts/{account_no}/balance"))

    async def recent_details(self, account_no: str, limit: int = 3,
                             kinds: Sequence[str] = ("deposit",)) -> list[Detail]:
        query = {"limit": str(limit), "kinds": ",".join(kinds)}
        return wire.details_from_json(
            await self._call("recent_details", "GET", f"/accounts/{account_no}/details",
                             query=query))

    async def loan(self, account_no: str) -> Loan | None:
        return wire.loan_from_json(await self._call("loan", "GET", f"/accounts/{account_no}/loan"))

    async def registered_mobile(self, account_no: str) -> str:
        return wire.mobile_from_json(
            await self._call("registered_mobile", "GET", f"/accounts/{account_no}/mobile"))

    async def find_by_mobile(self, mobile: str) -> list[Account]:
        return wire.accounts_from_json(
            await self._call("find_by_mobile", "POST", "/mobiles/accounts",
                             body={"mobile": mobile}, idempotent=True))

    async def events_since(self, cursor: int, limit: int = 1000
                           ) -> tuple[list[AccountEvent], int]:
        query = {"cursor": str(cursor), "limit": str(limit)}
        return wire.events_from_json(await self._call("events_since", "GET", "/events",
                                                      query=query))

    # -- operations (not part of CoreClient) ----------------------------------------------

    async def health(self) -> float:
        """One signed call, no retries: the core's clock in Unix seconds (``hotline doctor``)."""
        payload = await self._attempt("health", "GET", "/health", None, None)
        if not isinstance(payload, dict) or not isinstance(payload.get("time"), int):
            raise CoreProtocolError(f"core {self.center} health: no time in the answer")
        return float(payload["time"])

    # -- transport --------------------------------------------------------------------------

    async def _call(self, op: str, method: str, path: str, *, query: dict | None = None,
                    body: dict | None = None, idempotent: bool = True) -> Any:
        """One operation: breaker first, then attempts with jittered backoff if idempotent."""
        attempts = 1 + (self.retries if idempotent else 0)
        attempt = 0
        while True:
            attempt += 1
            self.breaker.before_call()
            try:
                result = await self._attempt(op, method, path, query, body)
            except CoreUnavailable as e:
                self.breaker.failure()
                if attempt == attempts:
                    raise
                delay = self.backoff * (2 ** (attempt - 1)) * (0.5 + self._jitter())
                log.info("core {center} {op} failed ({why}), retry {n} in {delay:.2f} s",
                         center=self.center, op=op, why=str(e), n=attempt, delay=delay)
                await deferLater(self._clock, delay)
                continue
            except (CoreProtocolError, defer.CancelledError):
                self.breaker.failure()
                raise
            except CoreError:
                self.breaker.success()  # a domain answer (not found, wrong password): core is up
                raise
            self.breaker.success()
            return result

    async def _attempt(self, op: str, method: str, path: str, query: dict | None,
                       body: dict | None) -> Any:
        """One signed request within ``timeout``; answers become results or typed errors."""
        full = self._base_path + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
        timestamp, nonce = int(self._clock.seconds()), self._nonce()
        headers = {
            signing.TIMESTAMP: str(timestamp), signing.NONCE: nonce,
            signing.SIGNATURE: signing.sign(self._key, method, full, timestamp, nonce, data),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        def timed_out(_result: Any, _timeout: float) -> None:
            # Cancelling a treq request fails it with ResponseNeverReceived, not CancelledError.
            raise CoreUnavailable(f"core {self.center} {op}: no answer within "
                                  f"{self.timeout:g} s")

        d = defer.Deferred.fromCoroutine(self._exchange(method, self._origin + full, headers, data))
        d.addTimeout(self.timeout, self._clock, onTimeoutCancel=timed_out)
        try:
            status, content = await d
        except _NETWORK_ERRORS as e:
            raise CoreUnavailable(f"core {self.center} {op}: {type(e).__name__}") from None
        if status >= 500:
            raise CoreUnavailable(f"core {self.center} {op}: HTTP {status}")
        if status == 204:
            return None
        try:
            payload = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            raise CoreProtocolError(f"core {self.center} {op}: malformed JSON "
                                    f"(HTTP {status})") from None
        if status == 200:
            return payload
        raise wire.error_from_json(status, payload)

    async def _exchange(self, method: str, url: str, headers: dict, data: bytes
                        ) -> tuple[int, bytes]:
        response = await self._client.request(method, url, headers=headers,
                                              data=data if data else None)
        return response.code, await response.content()


def make_http_client(reactor: Any) -> Any:
    """A treq HTTPClient with a persistent connection pool, for ``HttpCore``."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 16
    return HTTPClient(Agent(reactor, pool=pool))
