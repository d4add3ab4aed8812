"""Signatures between the platform and a core: HMAC-SHA256 with a replay window, both ways.

A request signs ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nSHA256(BODY)``. The
server rejects a timestamp outside the window and a nonce seen within it, so a
captured request cannot be played again. The answer signs
``RESPONSE\\nSTATUS\\nREQUEST_NONCE\\nTIMESTAMP\\nSHA256(BODY)`` under the same key,
so only the core can answer, and only this request (an old answer replayed by a
man in the middle carries another nonce); its timestamp is the core's clock,
which lets the client measure the skew. Pure code: time comes in as an argument.
"""
from __future__ import annotations

import hashlib
import hmac
import math

TIMESTAMP = "X-HPF-Timestamp"
NONCE = "X-HPF-Nonce"
SIGNATURE = "X-HPF-Signature"
RESPONSE_SIGNATURE = "X-HPF-Response-Signature"
DEFAULT_WINDOW = 300


class SignatureError(Exception):
    """A request whose signature, timestamp or nonce is not acceptable."""


def string_to_sign(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()


def sign(key: bytes, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of the request under ``key``."""
    return hmac.new(key, string_to_sign(method, path, timestamp, nonce, body),
                    hashlib.sha256).hexdigest()


# Nonces remembered at once: past this, new requests are refused (never an old nonce
# forgotten early, which would let its request be replayed).
MAX_NONCES = 100_000


class NonceMemory:
    """The nonces seen within twice the window, bounded: each one is accepted once."""

    def __init__(self, window: float = DEFAULT_WINDOW, capacity: int = MAX_NONCES):
        self.window, self.capacity = window, capacity
        self._seen: dict[str, float] = {}  # insertion order is arrival order

    def first_use(self, nonce: str, now: float) -> None:
        """Remember ``nonce``, or raise SignatureError when it was used or memory is full."""
        while self._seen:  # oldest first: forget what has left the window
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= 2 * self.window:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            raise SignatureError("nonce already used")
        if len(self._seen) >= self.capacity:
            raise SignatureError("too many requests in the replay window")
        self._seen[nonce] = now


def ascii_header(value: bytes | str | None) -> str | None:
    """A header value as text, or SignatureError when it is not printable ASCII."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureError("header is not ASCII") from None
    if not text.isprintable():
        raise SignatureError("header holds control characters")
    return text


def fresh(timestamp: str, now: float, window: float) -> float:
    """The timestamp as a number when it is finite and within ``window`` of now."""
    try:
        ts = float(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    if not math.isfinite(ts) or abs(now - ts) > window:
        raise SignatureError("timestamp outside the replay window")
    return ts


class ReplayGuard:
    """Checks signed requests; remembers the nonces seen within the window."""

    def __init__(self, window: int = DEFAULT_WINDOW, capacity: int = MAX_NONCES):
        self.window = window
        self.nonces = NonceMemory(window, capacity)

    def check(self, key: bytes, method: str, path: str, timestamp: str | bytes | None,
              nonce: str | bytes | None,
              signature: str | bytes | None, body: bytes, now: float) -> None:
        """Accept the request once, or raise SignatureError saying why."""
        timestamp, nonce, signature = (ascii_header(timestamp), ascii_header(nonce),
                                       ascii_header(signature))
        if not (timestamp and nonce and signature):
            raise SignatureError("missing signature headers")
        if not timestamp.isdigit():
            raise SignatureError("timestamp is not a whole number")
        ts = int(fresh(timestamp, now, self.window))
        expected = sign(key, method, path, ts, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise SignatureError("signature does not match")
        self.nonces.first_use(nonce, now)


def sign_response(key: bytes, status: int, nonce: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of an answer to the request that carried ``nonce``."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"RESPONSE\n{status}\n{nonce}\n{timestamp}\n{digest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_response(key: bytes, status: int, nonce: str, timestamp: bytes | str | None,
                   signature: bytes | str | None, body: bytes) -> int:
    """The core's timestamp of a genuine answer, or SignatureError."""
    timestamp, signature = ascii_header(timestamp), ascii_header(signature)
    if not (timestamp and signature and timestamp.isdigit()):
        raise SignatureError("answer not signed")
    expected = sign_response(key, status, nonce, int(timestamp), body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("answer signature does not match")
    return int(timestamp)
