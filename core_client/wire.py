"""The JSON shapes of openapi.yaml: dataclasses to JSON and back, and error bodies to errors.

Pure functions shared by the HTTP client and the test server, so both sides
speak exactly the document. Decoding raises CoreProtocolError on any shape it
does not expect; amounts travel as decimal strings, never floats.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from collections.abc import Callable

from common.masking import mask_text
from core_client.interface import (
    Account,
    AccountEvent,
    AccountLocked,
    AccountNotFound,
    Balance,
    CoreAuthFailed,
    CoreError,
    CoreProtocolError,
    Detail,
    InvalidIdNumber,
    Loan,
    PasswordRejected,
    WrongPassword,
)

T = TypeVar("T")


def account_to_json(a: Account) -> dict:
    return {"center": a.center, "account_no": a.account_no, "name": a.name,
            "id_number": a.id_number, "status": a.status}


def balance_to_json(b: Balance) -> dict:
    return {"balance": str(b.balance), "monthly_deposit": str(b.monthly_deposit),
            "paid_up_to": b.paid_up_to, "status": b.status}


def detail_to_json(d: Detail) -> dict:
    return {"date": d.date.isoformat(), "kind": d.kind, "amount": str(d.amount),
            "balance_after": str(d.balance_after), "reason": d.reason, "serial": d.serial}


def loan_to_json(n: Loan | None) -> dict:
    if n is None:
        return {"loan": None}
    return {"loan": {"loan_no": n.loan_no, "balance": str(n.balance),
                     "monthly_repayment": str(n.monthly_repayment),
                     "overdue_principal": str(n.overdue_principal),
                     "overdue_periods": n.overdue_periods, "term_months": n.term_months,
                     "repayment_day": n.repayment_day, "status": n.status}}


def event_to_json(e: AccountEvent) -> dict:
    return {"cursor": e.cursor, "kind": e.kind, "account_no": e.account_no,
            "occurred_at": e.occurred_at.isoformat(), "fields": e.fields}


def error_to_json(e: CoreError) -> tuple[int, dict]:
    """The HTTP status and body the core answers for a typed error."""
    if isinstance(e, AccountNotFound):
        return 404, {"error": "not_found", "message": str(e)}
    if isinstance(e, InvalidIdNumber):
        return 400, {"error": "invalid_id_number", "message": str(e)}
    if isinstance(e, WrongPassword):
        return 401, {"error": "wrong_password", "message": str(e),
                     "attempts_left": e.attempts_left}
    if isinstance(e, AccountLocked):
        return 423, {"error": "locked", "message": str(e),
                     "until": e.until.isoformat(timespec="seconds")}
    if isinstance(e, PasswordRejected):
        return 422, {"error": "password_rejected", "message": str(e)}
    if isinstance(e, CoreAuthFailed):
        return 401, {"error": "bad_signature", "message": str(e)}
    return 400, {"error": "bad_request", "message": str(e)}


def error_from_json(status: int, body: Any) -> CoreError:
    """The typed error for a 4xx answer; an unknown shape is a protocol error."""
    code = body.get("error") if isinstance(body, dict) else None
    # A real core may echo personal data in its message: mask before it reaches any log.
    message = mask_text(str(body.get("message", ""))) if isinstance(body, dict) else ""
    if status == 404 and code == "not_found":
        return AccountNotFound(message or "account not found")
    if status == 400 and code == "invalid_id_number":
        return InvalidIdNumber(message or "invalid ID number")
    if status == 401 and code == "wrong_password":
        return WrongPassword(_field(body, "attempts_left", int))
    if status == 423 and code == "locked":
        return AccountLocked(_field(body, "until", dt.datetime.fromisoformat))
    if status == 422 and code == "password_rejected":
        return PasswordRejected(message or "new password rejected")
    if status == 401 and code == "bad_signature":
        return CoreAuthFailed(f"core refused the request signature: {message}")
    return CoreProtocolError(f"unexpected core answer {status} {code!r}")


def account_from_json(o: Any) -> Account:
    return Account(_field(o, "center", str), _field(o, "account_no", str), _field(o, "name", str),
                   _field(o, "id_number", str), _field(o, "status", str))


def accounts_from_json(o: Any) -> list[Account]:
    return [account_from_json(a) for a in _field(o, "accounts", list)]


def balance_from_json(o: Any) -> Balance:
    return Balance(_field(o, "balance", _decimal), _field(o, "monthly_deposit", _decimal),
                   _field(o, "paid_up_to", str), _field(o, "status", str))


def details_from_json(o: Any) -> list[Detail]:
    return [Detail(_field(d, "date", dt.date.fromisoformat), _field(d, "kind", str),
                   _field(d, "amount", _decimal), _field(d, "balance_after", _decimal),
                   _optional(d, "reason"), _optional(d, "serial"))
            for d in _field(o, "details", list)]


def loan_from_json(o: Any) -> Loan | None:
    if not isinstance(o, dict) or "loan" not in o:
        raise CoreProtocolError("loan answer without a loan member")
    n = o["loan"]
    if n is None:
        return None
    return Loan(_field(n, "loan_no", str), _field(n, "balance", _decimal),
                _field(n, "monthly_repayment", _decimal), _field(n, "overdue_principal", _decimal),
                _field(n, "overdue_periods", int), _field(n, "term_months", int),
                _field(n, "repayment_day", int), _field(n, "status", str))


def mobile_from_json(o: Any) -> str:
    return _field(o, "mobile", str)


def events_from_json(o: Any) -> tuple[list[AccountEvent], int]:
    events = [AccountEvent(_field(e, "cursor", int), _field(e, "kind", str),
                           _field(e, "account_no", str),
                           _field(e, "occurred_at", dt.datetime.fromisoformat),
                           _field(e, "fields", dict))
              for e in _field(o, "events", list)]
    return events, _field(o, "next_cursor", int)


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError("amounts are decimal strings")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal amount") from None


def _optional(o: dict, key: str) -> str | None:
    value = o.get(key)
    if value is not None and not isinstance(value, str):
        raise CoreProtocolError(f"core answer member {key!r} has the wrong type")
    return value


def _field(o: Any, key: str, convert: Callable[[Any], T]) -> T:
    """``o[key]`` converted, or CoreProtocolError naming the member (never its value)."""
    if not isinstance(o, dict) or key not in o:
        raise CoreProtocolError(f"core answer lacks {key!r}")
    value = o[key]
    if convert in (str, int, list, dict):
        if not isinstance(value, convert) or isinstance(value, bool):
            raise CoreProtocolError(f"core answer member {key!r} has the wrong type")
        return value
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise CoreProtocolError(f"core answer member {key!r} is malformed") from None
