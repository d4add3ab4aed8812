"""What the SMS door's tests share: the clients' secrets, a valid send request, and a
fired Deferred's outcome."""
from __future__ import annotations

SECRET = "wuhan-loans-secret-for-tests"
ENV = {"DOOR_WUHAN_LOANS": SECRET, "DOOR_PROVINCE": "province-secret-for-tests"}

DEPOSIT = {"template": "deposit_credited",
           "params": {"account": "12345678", "date": "2026-11-26", "amount": "100",
                      "balance": "2000"}}
MOBILE = "13912340001"


def msg(to=MOBILE, **over):
    """One send request for ``to``: a deposit notice, with ``over`` replacing its fields."""
    return {"to": to, **DEPOSIT, **over}


def outcome(d):
    """What a Deferred that has fired holds: its result, or the Failure itself."""
    out = []
    d.addBoth(out.append)
    return out[0]
