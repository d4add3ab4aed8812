"""Public test doubles for the core, like treq's StubTreq: other rooms test against these.

``FakeCore`` is an in-memory CoreClient holding the first persons of the demo
data (the documented identities included); it needs no threads, files or clock,
so unit tests stay synchronous. ``CoreServer`` is the HTTP core of openapi.yaml
as a twisted.web resource over any CoreClient, with switches to misbehave
(delay, 5xx, malformed JSON, wrong key) for testing ``HttpCore``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any
from collections.abc import Sequence
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from common.masking import mask_account, mask_id_number
from core_client import demo_data, idnumber, signing, wire
from core_client.interface import (
    Account,
    AccountEvent,
    AccountLocked,
    AccountNotFound,
    Balance,
    CoreAuthFailed,
    CoreClient,
    CoreError,
    Detail,
    InvalidIdNumber,
    Loan,
    PasswordRejected,
    WrongPassword,
)


def _money(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


class FakeCore:
    """An in-memory CoreClient over the first ``persons`` demo persons (same seed, same data).

    ``calls`` records operation names in order, so tests can assert what was asked.
    """

    def __init__(self, center: str = "demo", persons: int = 50, *,
                 seed: int = demo_data.DEFAULT_SEED, core_attempts: int = 5):
        self.center = center
        self.calls: list[str] = []
        self.core_attempts = core_attempts
        gen = demo_data._Generator(seed, demo_data.AS_OF)
        self._persons: dict[str, tuple] = {}
        self._accounts: dict[str, list] = {}
        self._details: dict[str, list[tuple]] = {}
        self._loans: dict[str, tuple] = {}
        self._failures: dict[str, int] = {}
        self.events: list[AccountEvent] = []
        for i in range(max(persons, len(demo_data.PROFILES))):
            p = gen.person(i, demo_data.PROFILES[i] if i < len(demo_data.PROFILES) else None)
            grzh = p["account"][0]
            self._persons[grzh] = p["person"]
            self._accounts[grzh] = list(p["account"])
            self._details[grzh] = p["details"]
            if p["loan"]:
                self._loans[grzh] = p["loan"]
            for kind, account_no, at, fields in p["events"]:
                self.events.append(AccountEvent(len(self.events) + 1, kind, account_no,
                                                dt.datetime.fromisoformat(at), fields))

    def _account(self, account_no: str) -> list:
        if account_no not in self._accounts:
            raise AccountNotFound(f"no account {mask_account(account_no)}")
        return self._accounts[account_no]

    def _as_account(self, grzh: str) -> Account:
        person, account = self._persons[grzh], self._accounts[grzh]
        return Account(self.center, grzh, person[1], person[3], account[3])

    async def find_account(self, *, account_no: str | None = None,
                           id_number: str | None = None) -> Account:
        self.calls.append("find_account")
        if (account_no is None) == (id_number is None):
            raise ValueError("give exactly one of account_no and id_number")
        if account_no is not None:
            self._account(account_no)
            return self._as_account(account_no)
        id_number = idnumber.normalize(id_number)
        if not idnumber.is_valid(id_number):
            raise InvalidIdNumber(f"not a valid ID number: {mask_id_number(id_number)}")
        for grzh, person in self._persons.items():
            if person[3] == id_number:
                return self._as_account(grzh)
        raise AccountNotFound(f"no account for {mask_id_number(id_number)}")

    async def verify_password(self, account_no: str, password: str) -> None:
        self.calls.append("verify_password")
        self._check(account_no, password)

    def _check(self, account_no: str, password: str) -> None:
        account = self._account(account_no)
        if account[10] is not None:
            raise AccountLocked(dt.datetime.fromtimestamp(account[10]))
        if demo_data.check_password(password, account[8]):
            self._failures.pop(account_no, None)
            return
        failures = self._failures.get(account_no, 0) + 1
        self._failures[account_no] = failures
        raise WrongPassword(max(0, self.core_attempts - failures))

    async def change_password(self, account_no: str, old: str, new: str) -> None:
        self.calls.append("change_password")
        if not (len(new) == 6 and new.isdigit()):
            raise PasswordRejected("the new query password must be exactly 6 digits")
        self._check(account_no, old)
        self._account(account_no)[8] = demo_data.hash_password(new, b"fake-core-salt!!", 1)

    async def balance(self, account_no: str) -> Balance:
        self.calls.append("balance")
        a = self._account(account_no)
        return Balance(_money(a[4]), _money(a[5] + a[6]), a[7], a[3])

    async def recent_details(self, account_no: str, limit: int = 3,
                             kinds: Sequence[str] = ("deposit",)) -> list[Detail]:
        self.calls.append("recent_details")
        self._account(account_no)
        rows = [r for r in reversed(self._details[account_no]) if r[3] in kinds][:limit]
        return [Detail(dt.date.fromisoformat(r[2]), r[3], _money(r[4]), _money(r[5]), r[6], r[7])
                for r in rows]

    async def loan(self, account_no: str) -> Loan | None:
        self.calls.append("loan")
        self._account(account_no)
        n = self._loans.get(account_no)
        if n is None:
            return None
        return Loan(n[0], _money(n[3]), _money(n[4]), _money(n[5]), n[6], n[7], n[8], n[9])

    async def registered_mobile(self, account_no: str) -> str:
        self.calls.append("registered_mobile")
        self._account(account_no)
        return self._persons[account_no][4]

    async def find_by_mobile(self, mobile: str) -> list[Account]:
        self.calls.append("find_by_mobile")
        return [self._as_account(g) for g, p in self._persons.items() if p[4] == mobile]

    async def events_since(self, cursor: int, limit: int = 1000
                           ) -> tuple[list[AccountEvent], int]:
        self.calls.append("events_since")
        batch = [e for e in self.events if e.cursor > cursor][:limit]
        return batch, (batch[-1].cursor if batch else cursor)


_ACCOUNT = r"/accounts/(?P<account_no>[0-9A-Za-z]{1,32})"
ROUTES = (
    ("POST", re.compile(r"/accounts/search"), "find_account"),
    ("POST", re.compile(_ACCOUNT + r"/password/verify"), "verify_password"),
    ("POST", re.compile(_ACCOUNT + r"/password/change"), "change_password"),
    ("GET", re.compile(_ACCOUNT + r"/balance"), "balance"),
    ("GET", re.compile(_ACCOUNT + r"/details"), "recent_details"),
    ("GET", re.compile(_ACCOUNT + r"/loan"), "loan"),
    ("GET", re.compile(_ACCOUNT + r"/mobile"), "registered_mobile"),
    ("POST", re.compile(r"/mobiles/accounts"), "find_by_mobile"),
    ("GET", re.compile(r"/events"), "events_since"),
    ("GET", re.compile(r"/health"), "health"),
)


class CoreServer(Resource):
    """The core's HTTP API (openapi.yaml) over ``core``, checking signatures on ``clock``.

    Switches: ``delay`` seconds before answering; ``fail_next`` requests answered with
    ``fail_status``; ``malformed`` answers truncated JSON; ``wrong_key`` checks
    signatures with another key (every request is refused). ``received`` counts
    requests as they arrive; ``answers`` keeps (operation, status, body) of every
    answer for tests and schema validation.
    """

    isLeaf = True

    def __init__(self, core: CoreClient, key: str | bytes, clock: Any, *,
                 base_path: str = "/hpf/v1", window: int = signing.DEFAULT_WINDOW):
        super().__init__()
        self.core, self.clock, self.base_path = core, clock, base_path.rstrip("/")
        self.key = key.encode() if isinstance(key, str) else key
        self.guard = signing.ReplayGuard(window)
        self.delay = 0.0
        self.fail_next, self.fail_status = 0, 503
        self.malformed = False
        self.wrong_key = False
        self.answers: list[tuple[str, int, Any]] = []
        self.received = 0

    def render(self, request: Request):
        self.received += 1
        lost: list[Failure] = []
        request.notifyFinish().addErrback(lost.append)
        d = Deferred.fromCoroutine(self._respond(request, lost))
        d.addErrback(self._crashed, request, lost)
        return NOT_DONE_YET

    async def _respond(self, request: Request, lost: list) -> None:
        method = request.method.decode()
        uri = request.uri.decode()
        body = request.content.read()
        if self.delay:
            await deferLater(self.clock, self.delay)
        op, status, payload = await self._handle(method, uri, body, request)
        self.answers.append((op, status, payload))
        if lost:
            return
        request.setResponseCode(status)
        if status != 204:
            request.setHeader(b"Content-Type", b"application/json")
            data = json.dumps(payload, ensure_ascii=False).encode()
            request.write(data[: len(data) // 2] if self.malformed else data)
        request.finish()

    def _crashed(self, failure: Failure, request: Request, lost: list) -> None:
        """An unexpected server error becomes a 500, as a real core's would."""
        self.answers.append(("?", 500, {"error": "internal", "message": failure.getErrorMessage()}))
        if not lost:
            request.setResponseCode(500)
            request.finish()

    async def _handle(self, method: str, uri: str, body: bytes, request: Request
                      ) -> tuple[str, int, Any]:
        def header(name: str) -> str | None:
            value = request.getHeader(name)
            return value.decode() if isinstance(value, bytes) else value

        key = b"a key the client does not have" if self.wrong_key else self.key
        try:
            self.guard.check(key, method, uri, header(signing.TIMESTAMP), header(signing.NONCE),
                             header(signing.SIGNATURE), body, self.clock.seconds())
        except signing.SignatureError as e:
            return ("signature",) + wire.error_to_json(CoreAuthFailed(str(e)))
        path, _, qs = uri.partition("?")
        if not path.startswith(self.base_path):
            return "?", 404, {"error": "no_route", "message": "unknown path"}
        path = path[len(self.base_path):]
        for route_method, pattern, op in ROUTES:  # noqa: B007  (op is used after the break)
            m = pattern.fullmatch(path)
            if m and route_method == method:
                break
        else:
            return "?", 404, {"error": "no_route", "message": "unknown path"}
        if self.fail_next > 0:
            self.fail_next -= 1
            return op, self.fail_status, {"error": "unavailable", "message": "core is down"}
        try:
            args = json.loads(body) if body else {}
            query = {k: v[-1] for k, v in parse_qs(qs).items()}
            status, payload = await self._operation(op, m.groupdict(), args, query)
        except CoreError as e:
            status, payload = wire.error_to_json(e)
        except (KeyError, ValueError, TypeError) as e:
            status, payload = 400, {"error": "bad_request", "message": type(e).__name__}
        return op, status, payload

    async def _operation(self, op: str, path: dict, args: dict, query: dict
                         ) -> tuple[int, Any]:
        core = self.core
        if op == "health":
            return 200, {"status": "ok", "time": int(self.clock.seconds())}
        if op == "find_account":
            account = await core.find_account(account_no=args.get("account_no"),
                                              id_number=args.get("id_number"))
            return 200, wire.account_to_json(account)
        if op == "verify_password":
            await core.verify_password(path["account_no"], args["password"])
            return 204, None
        if op == "change_password":
            await core.change_password(path["account_no"], args["old"], args["new"])
            return 204, None
        if op == "balance":
            return 200, wire.balance_to_json(await core.balance(path["account_no"]))
        if op == "recent_details":
            kinds = tuple(k for k in query.get("kinds", "deposit").split(",") if k)
            details = await core.recent_details(path["account_no"], int(query.get("limit", 3)),
                                                kinds)
            return 200, {"details": [wire.detail_to_json(d) for d in details]}
        if op == "loan":
            return 200, wire.loan_to_json(await core.loan(path["account_no"]))
        if op == "registered_mobile":
            return 200, {"mobile": await core.registered_mobile(path["account_no"])}
        if op == "find_by_mobile":
            accounts = await core.find_by_mobile(args["mobile"])
            return 200, {"accounts": [wire.account_to_json(a) for a in accounts]}
        events, next_cursor = await core.events_since(int(query["cursor"]),
                                                      int(query.get("limit", 1000)))
        return 200, {"events": [wire.event_to_json(e) for e in events],
                     "next_cursor": next_cursor}


def serve(reactor: Any, server: CoreServer, interface: str = "127.0.0.1"):
    """Listen on a free loopback port; returns the listening port (``.getHost().port``)."""
    return reactor.listenTCP(0, Site(server), interface=interface)
