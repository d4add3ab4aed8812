"""Who is calling the door: a bearer secret or an HMAC-signed request with a nonce, the
client enabled, from an allowed address. Secrets come from the environment (the client row
names the variable); nonces are kept in the database so every instance refuses a replay.

Signed requests carry ``X-Client-Id``, ``X-Timestamp`` (epoch seconds), ``X-Nonce`` (1-64
printable ASCII characters, used once) and ``X-Signature`` = hex HMAC-SHA256(secret,
"METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY"), within ``WINDOW`` seconds. The same
form as the codes API's (sms.codes_api), so one client library serves both.
"""
from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import delete, text

from core_client.signing import SignatureError, ascii_header, fresh
from sms.door.tables import DoorNonce
from storage.models import table_of

WINDOW = 300.0
MAX_NONCE = 64
N = table_of(DoorNonce)


class AuthError(Exception):
    """Refused: ``status`` 401 (who are you) or 403 (not allowed), ``code`` for the body."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def header(request, name: bytes) -> str:
    """A header as printable ASCII text ('' when absent), or AuthError 401: never a crash."""
    try:
        return ascii_header(request.getHeader(name)) or ""
    except SignatureError as e:
        raise AuthError(401, "unauthorized", f"{name.decode()}: {e}") from None


def sign(secret: bytes, method: str, uri: str, stamp: str, nonce: str, body: bytes) -> str:
    """The signature a client sends (used by tests, the demo and the bench as the client)."""
    message = b"\n".join([method.encode(), uri.encode(), stamp.encode(), nonce.encode(), body])
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _remember_nonce(session, client: str, nonce: str, now: float) -> bool:
    session.execute(delete(N).where(N.c.at < now - 2 * WINDOW))
    done = session.execute(text(
        "INSERT INTO door_nonce (client, nonce, at) VALUES (:c, :n, :at) ON CONFLICT DO NOTHING"),
        {"c": client, "n": nonce, "at": now})
    return done.rowcount == 1


class Authenticator:
    """Turns a request into the Client it proves to be, or raises AuthError."""

    def __init__(self, directory, db, clock, environ, lock=None):
        self.directory, self.db, self.clock, self.environ = directory, db, clock, environ
        self.lock = lock  # SQLite's one writer: the outbox's lock

    async def client_for(self, request, body: bytes):
        clients = await self.directory.fresh()
        now = self.clock.seconds()
        auth = header(request, b"authorization")
        client_id = header(request, b"x-client-id")
        if auth.lower().startswith("bearer "):
            client = self._by_bearer(clients, auth[7:].strip().encode(), client_id)
        else:
            client = await self._by_signature(clients, request, body, client_id, now)
        if not client.enabled:
            raise AuthError(403, "client_disabled", "this client is disabled")
        peer = request.getClientAddress()
        if not client.allows_ip(getattr(peer, "host", "")):
            raise AuthError(403, "ip_not_allowed", "this address may not call for the client")
        return client

    def _by_bearer(self, clients, token: bytes, client_id: str):
        candidates = ([clients.by_name[client_id]] if client_id in clients.by_name
                      else [] if client_id else list(clients.by_name.values()))
        for client in candidates:
            secret = client.secret(self.environ)
            if secret is not None and hmac.compare_digest(token, secret):
                return client
        raise AuthError(401, "unauthorized", "unknown bearer secret")

    async def _by_signature(self, clients, request, body, client_id, now):
        stamp = header(request, b"x-timestamp")
        nonce = header(request, b"x-nonce")
        signature = header(request, b"x-signature")
        if not (client_id and stamp and nonce and signature):
            raise AuthError(401, "unauthorized",
                            "send a bearer secret or a signed request with a nonce")
        if len(nonce) > MAX_NONCE:
            raise AuthError(401, "unauthorized", "X-Nonce is longer than 64 characters")
        try:
            fresh(stamp, now, WINDOW)
        except SignatureError as e:
            raise AuthError(401, "unauthorized",
                            f"X-Timestamp must be epoch seconds within {WINDOW:.0f} s of now"
                            f" ({e})") from None
        client = clients.by_name.get(client_id)
        secret = client.secret(self.environ) if client is not None else None
        if secret is None:
            raise AuthError(401, "unauthorized", "unknown client")
        method = request.method.decode("ascii", "replace")
        uri = request.uri.decode("ascii", "replace")
        expected = sign(secret, method, uri, stamp, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise AuthError(401, "unauthorized", "bad signature")
        remembered = (self.db.run(_remember_nonce, client.name, nonce, now) if self.lock is None
                      else self.lock.run(self.db.run, _remember_nonce, client.name, nonce, now))
        if not await remembered:
            raise AuthError(401, "unauthorized", "nonce already used")
        return client
