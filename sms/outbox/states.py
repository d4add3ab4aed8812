"""The one vocabulary of message, part and receipt states, their transitions and the roll-up.

Messages go queued -> submitting -> submitted -> delivered / failed / expired, and
back to queued on a temporary error; each SMPP part has its own state. A submitted
part whose receipt does not come within its class's receipt timeout is ``unknown``:
sent, fate unknown; a late receipt still moves it to its final state. A DLR's
``stat`` (DELIVRD, UNDELIV, ...) is the SMSC's word for a part's final state:
``dlr_stat`` reads the spellings SMSCs use, ``receipt_state`` maps it to a part state.
"""
from __future__ import annotations

from collections.abc import Sequence

QUEUED, SUBMITTING, SUBMITTED = "queued", "submitting", "submitted"
DELIVERED, FAILED, EXPIRED = "delivered", "failed", "expired"
UNKNOWN = "unknown"
FINAL = frozenset({DELIVERED, FAILED, EXPIRED})

# A message may jump from submitting to a final state when a DLR that came
# before its submit_sm_resp is matched in the same transaction as the result.
MESSAGE_TRANSITIONS = {
    QUEUED: frozenset({SUBMITTING, EXPIRED, FAILED}),
    SUBMITTING: frozenset({QUEUED, SUBMITTED, DELIVERED, FAILED, EXPIRED}),
    SUBMITTED: frozenset({DELIVERED, FAILED, EXPIRED, UNKNOWN}),
    UNKNOWN: frozenset({DELIVERED, FAILED, EXPIRED}),
}
PART_TRANSITIONS = {
    QUEUED: frozenset({SUBMITTING, EXPIRED, FAILED}),
    SUBMITTING: frozenset({QUEUED, SUBMITTED, FAILED}),
    SUBMITTED: frozenset({DELIVERED, FAILED, EXPIRED, UNKNOWN}),
    UNKNOWN: frozenset({DELIVERED, FAILED, EXPIRED}),
}
AWAITING_RECEIPT = frozenset({SUBMITTED, UNKNOWN})  # parts a receipt may still settle

# SMPP DLR ``stat`` values, the spellings SMSCs use for them, and the part state each ends in.
DLR_FINAL = ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN")
DLR_STATES = DLR_FINAL + ("ACCEPTD", "ENROUTE")
DLR_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD",
               "ACCEPTED": "ACCEPTD", "DELETE": "DELETED", "EXPIRE": "EXPIRED",
               "FAILED": "UNDELIV", "FAIL": "UNDELIV"}
PART_STATE_OF_DLR = {"DELIVRD": DELIVERED, "EXPIRED": EXPIRED, "UNDELIV": FAILED,
                     "REJECTD": FAILED, "DELETED": FAILED, "UNKNOWN": FAILED}


class IllegalTransition(Exception):
    """A state change the outbox state machine does not allow."""


def check_transition(old: str, new: str, table: dict = MESSAGE_TRANSITIONS) -> None:
    if new not in table.get(old, ()):
        raise IllegalTransition(f"{old} -> {new}")


def dlr_stat(raw: str) -> str | None:
    """A DLR ``stat`` in its SMPP spelling (DELIVRD, ...), None if it is none of them."""
    s = (raw or "").strip().upper()
    s = DLR_ALIASES.get(s, s)
    return s if s in DLR_STATES else None


def receipt_state(state: str) -> str | None:
    """A DLR ``stat`` (any spelling) to a final part state, None if it is not final."""
    return PART_STATE_OF_DLR.get(dlr_stat(state) or "")


def rollup(part_states: Sequence[str]) -> str:
    """The message state its parts imply (a pure function, pinned by tests)."""
    states = set(part_states)
    if SUBMITTING in states:
        return SUBMITTING
    if QUEUED in states:
        return FAILED if FAILED in states else QUEUED
    if states <= FINAL:
        if states == {DELIVERED}:
            return DELIVERED
        return FAILED if FAILED in states else EXPIRED
    if SUBMITTED in states:
        return SUBMITTED
    return FAILED if FAILED in states else UNKNOWN
