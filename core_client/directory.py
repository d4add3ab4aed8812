"""One CoreClient per configured center, each behind the platform's password lockout."""
from __future__ import annotations

from typing import Any, Protocol

from common.config import CenterConfig, Config
from core_client.embedded import EmbeddedCore
from core_client.http import HttpCore, make_http_client
from core_client.interface import CoreClient
from core_client.lockout import LockoutCore


class LockoutRules(Protocol):
    """What the cores read from the IVR room's section (``ivr.config.IvrConfig``, a room
    above this one): how many wrong passwords lock an account, and for how long, and how
    many one caller line may make across accounts."""

    @property
    def password_attempts(self) -> int: ...

    @property
    def lock_minutes(self) -> int: ...

    @property
    def caller_password_failures(self) -> int: ...


def build_cores(config: Config[LockoutRules, object, object], db: Any,
                reactor: Any) -> dict[str, CoreClient]:
    """``{center code: core}`` from the ``[center:X]`` sections; nothing connects yet.

    Embedded demo cores are generated (10,000 persons, deterministic) by the first
    query that finds the file missing, on a pool thread.
    """
    http_client = None
    cores: dict[str, CoreClient] = {}
    for code, center in config.centers.items():
        if center.core == "http":
            if http_client is None:
                http_client = make_http_client(reactor)
            inner: CoreClient = _http(center, reactor, http_client)
        else:
            assert center.core_db is not None  # an embedded center always has one (common.config)
            inner = EmbeddedCore(code, center.core_db, reactor)
        cores[code] = LockoutCore(inner, db, reactor, attempts=config.ivr.password_attempts,
                                  lock_minutes=config.ivr.lock_minutes,
                                  caller_attempts=config.ivr.caller_password_failures)
    return cores


def prepare_cores(cores: dict[str, CoreClient]):
    """A Deferred that fires once every embedded demo core is open (generated if missing).

    For the daemon's startService, so the first caller does not wait for generation.
    """
    from twisted.internet.defer import gatherResults

    return gatherResults([c.inner.prepare() for c in cores.values()
                          if isinstance(c, LockoutCore) and isinstance(c.inner, EmbeddedCore)],
                         consumeErrors=True)


def _http(center: CenterConfig, reactor: Any, client: Any) -> HttpCore:
    return HttpCore(center.code, center.core_url, center.core_key, reactor, client,
                    timeout=center.core_timeout)
