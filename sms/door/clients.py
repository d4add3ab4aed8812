"""Door clients: who may send, what, how much, from where; stored in the database, every
change audited. ``ClientDirectory`` keeps them in memory for the request path and reloads
them after a short time, so a ``hotline door client disable`` takes effect within seconds.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import insert, select, update

from sms.door.tables import DoorAudit, DoorClient
from storage.models import table_of

T = table_of(DoorClient)
AUDIT = table_of(DoorAudit)

CLASSES = ("code", "transaction", "bulk", "reply")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENV = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_SYSTEM_ID = re.compile(r"[A-Za-z0-9_-]{1,15}")
_EXT = re.compile(r"\d{1,8}")
_KEYWORD = re.compile(r"[A-Z0-9]{1,16}")


class ClientError(ValueError):
    """A client definition that is not acceptable (the message says which field)."""


@dataclass(frozen=True)
class Client:
    name: str
    center: str  # a center code, or "*" for the province (any center)
    secret_env: str
    system_id: str
    templates: tuple[str, ...] = ("*",)
    classes: tuple[str, ...] = ("transaction", "bulk")
    free_text: bool = False
    daily_quota: int = 100_000
    rate_per_second: int = 100
    source_exts: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # MO whose first word is one of these goes to the client
    ip_allow: tuple[str, ...] = ()
    callback_url: str | None = None
    callback_parts: bool = False
    enabled: bool = True
    _nets: tuple = field(default=(), compare=False, repr=False)

    def secret(self, environ=os.environ) -> bytes | None:
        """The shared secret from the environment (None when unset: the client cannot log in)."""
        value = environ.get(self.secret_env)
        return value.encode() if value else None

    def may_use_template(self, template: str) -> bool:
        return "*" in self.templates or template in self.templates

    def serves(self, center: str) -> bool:
        return self.center in ("*", center)

    def allows_ip(self, host: str) -> bool:
        if not self.ip_allow:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.nets())

    def nets(self) -> tuple:
        return self._nets or tuple(ipaddress.ip_network(n, strict=False) for n in self.ip_allow)


def validate(c: Client) -> Client:
    """The client with parsed networks, or ClientError naming the bad field."""
    if not _NAME.fullmatch(c.name):
        raise ClientError("name: lower-case letters, digits, _ and -, at most 32")
    if not _ENV.fullmatch(c.secret_env):
        raise ClientError("secret_env: the NAME of an environment variable (A-Z, 0-9, _)")
    if not _SYSTEM_ID.fullmatch(c.system_id):
        raise ClientError("system_id: 1-15 letters, digits, _ or -")
    bad = set(c.classes) - set(CLASSES)
    if bad or not c.classes:
        raise ClientError(f"classes: choose from {', '.join(CLASSES)}")
    if c.daily_quota < 0 or c.rate_per_second < 1:
        raise ClientError("daily_quota must be >= 0 and rate_per_second >= 1")
    for ext in c.source_exts:
        if not _EXT.fullmatch(ext):
            raise ClientError(f"source_exts: digits only, not {ext!r}")
    for word in c.keywords:
        if not _KEYWORD.fullmatch(word):
            raise ClientError(f"keywords: 1-16 letters or digits, upper case, not {word!r}")
    try:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in c.ip_allow)
    except ValueError as e:
        raise ClientError(f"ip_allow: {e}") from None
    if c.callback_url and not c.callback_url.startswith(("https://", "http://")):
        raise ClientError("callback_url must be an http(s) URL")
    return replace(c, _nets=nets)


def _row(c: Client, now: float) -> dict:
    return dict(name=c.name, center=c.center, secret_env=c.secret_env, system_id=c.system_id,
                templates=json.dumps(list(c.templates)), classes=json.dumps(list(c.classes)),
                free_text=int(c.free_text), daily_quota=c.daily_quota,
                rate_per_second=c.rate_per_second, source_exts=json.dumps(list(c.source_exts)),
                keywords=json.dumps(list(c.keywords)),
                ip_allow=json.dumps(list(c.ip_allow)), callback_url=c.callback_url,
                callback_parts=int(c.callback_parts), enabled=int(c.enabled), updated_at=now)


def from_row(r) -> Client:
    return validate(Client(
        name=r.name, center=r.center, secret_env=r.secret_env, system_id=r.system_id,
        templates=tuple(json.loads(r.templates)), classes=tuple(json.loads(r.classes)),
        free_text=bool(r.free_text), daily_quota=r.daily_quota,
        rate_per_second=r.rate_per_second, source_exts=tuple(json.loads(r.source_exts)),
        keywords=tuple(json.loads(r.keywords)),
        ip_allow=tuple(json.loads(r.ip_allow)), callback_url=r.callback_url,
        callback_parts=bool(r.callback_parts), enabled=bool(r.enabled)))


def _public(c: Client) -> dict:
    """What the audit trail and ``client list`` show (never a secret, only its env name)."""
    d = asdict(c)
    d.pop("_nets")
    return d


def describe(c: Client) -> dict:
    """A client's settings as listed and audited (a secret never, only its env name)."""
    return _public(c)


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated setting (templates, extensions, CIDRs, keywords) as a tuple."""
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


# How each changeable setting is read from text: ``hotline door client change KEY=VALUE``
# and the console's form; ``validate`` then judges the values.
SETTINGS: dict[str, Callable[[str], object]] = {
    "center": str, "secret_env": str, "system_id": str, "templates": split_list,
    "classes": split_list, "daily_quota": int, "rate_per_second": int,
    "source_exts": split_list, "keywords": lambda v: tuple(w.upper() for w in split_list(v)),
    "ip_allow": split_list, "callback_url": lambda v: v.strip() or None,
    "callback_parts": lambda v: v == "yes", "free_text": lambda v: v == "yes"}


def load_all(session) -> dict[str, Client]:
    return {r.name: from_row(r) for r in session.execute(select(T))}


def add_client(session, client: Client, actor: str, now: float) -> None:
    client = validate(client)
    if session.execute(select(T.c.name).where(T.c.name == client.name)).first():
        raise ClientError(f"client {client.name!r} exists")
    session.execute(insert(T).values(**_row(client, now), created_at=now))
    _audit(session, client.name, "add", _public(client), actor, now)


def change_client(session, name: str, changes: dict, actor: str, now: float) -> Client:
    """Apply ``changes`` (field -> new value) to a client; audited with the old values."""
    row = session.execute(select(T).where(T.c.name == name)).first()
    if row is None:
        raise ClientError(f"no client {name!r}")
    old = from_row(row)
    unknown = set(changes) - set(_public(old)) | ({"name"} & set(changes))
    if unknown:
        raise ClientError(f"cannot change {', '.join(sorted(unknown))}")
    new = validate(replace(old, **changes))
    session.execute(update(T).where(T.c.name == name).values(**_row(new, now)))
    before = _public(old)
    _audit(session, name, "change", {k: [before[k], v] for k, v in _public(new).items()
                                     if before[k] != v}, actor, now)
    return new


def _audit(session, client: str, action: str, detail: dict, actor: str, now: float) -> None:
    session.execute(insert(AUDIT).values(client=client, action=action, actor=actor, at=now,
                                         detail=json.dumps(detail, ensure_ascii=False)))


def audit_trail(session, client: str | None = None) -> list[dict]:
    q = select(AUDIT).order_by(AUDIT.c.id)
    if client:
        q = q.where(AUDIT.c.client == client)
    return [dict(r._mapping) for r in session.execute(q)]


class ClientDirectory:
    """Clients by name and SMPP system id, reloaded from the database every ``ttl`` seconds."""

    def __init__(self, db, clock, ttl: float = 5.0):
        self.db, self.clock, self.ttl = db, clock, ttl
        self.by_name: dict[str, Client] = {}
        self.by_system_id: dict[str, Client] = {}
        self._loaded_at: float | None = None

    async def fresh(self) -> ClientDirectory:
        now = self.clock.seconds()
        if self._loaded_at is None or now - self._loaded_at >= self.ttl:
            self.set(await self.db.run(load_all))
            self._loaded_at = now
        return self

    def set(self, clients: dict[str, Client]) -> None:
        self.by_name = clients
        self.by_system_id = {c.system_id: c for c in clients.values()}

    def owner_of_keyword(self, text: str) -> Client | None:
        """The enabled client owning the MO's first word (keywords are unique by convention;
        the first client listed wins a tie)."""
        word = (text.strip().split() or [""])[0].split("#")[0].upper()
        for c in self.by_name.values():
            if word and c.enabled and word in c.keywords:
                return c
        return None

    def owner_of_extension(self, destination: str, base: str) -> Client | None:
        """The client whose source extension an MO was sent to (``base`` + ext), longest first."""
        if not destination.startswith(base):
            return None
        ext = destination[len(base):]
        best = None
        for c in self.by_name.values():
            for e in c.source_exts:
                if ext.startswith(e) and c.enabled and (best is None or len(e) > best[0]):
                    best = (len(e), c)
        return best[1] if best else None
