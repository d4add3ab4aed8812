"""Request signatures between the platform and a core: HMAC-SHA256 with a replay window.

The signed string is ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nSHA256(BODY)``. The
server rejects a timestamp outside the window and a nonce seen within it, so a
captured request cannot be played again. Pure code: time comes in as an argument.
"""
from __future__ import annotations

import hashlib
import hmac

TIMESTAMP = "X-HPF-Timestamp"
NONCE = "X-HPF-Nonce"
SIGNATURE = "X-HPF-Signature"
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


class ReplayGuard:
    """Remembers the nonces seen within the window; forgets older ones as time moves on."""

    def __init__(self, window: int = DEFAULT_WINDOW):
        self.window = window
        self._seen: dict[str, float] = {}  # insertion order is arrival order

    def check(self, key: bytes, method: str, path: str, timestamp: str | None, nonce: str | None,
              signature: str | None, body: bytes, now: float) -> None:
        """Accept the request once, or raise SignatureError saying why."""
        if not (timestamp and nonce and signature):
            raise SignatureError("missing signature headers")
        try:
            ts = int(timestamp)
        except ValueError:
            raise SignatureError("timestamp is not a number") from None
        if abs(now - ts) > self.window:
            raise SignatureError("timestamp outside the replay window")
        expected = sign(key, method, path, ts, nonce, body)
        if not hmac.compare_digest(expected, signature):
            raise SignatureError("signature does not match")
        while self._seen:  # oldest first: forget what has left the window
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= 2 * self.window:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            raise SignatureError("nonce already used")
        self._seen[nonce] = now
