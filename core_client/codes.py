"""Verification codes: issued only to the account's registered mobile, stored only hashed.

Rules (all from ``[codes]``): ``length`` digits from ``secrets``; a lifetime of
``ttl`` seconds; at most ``max_attempts`` verify attempts per code; only the
newest code of an (account, purpose, client) counts and only once; per mobile at
most ``per_minute``/``per_hour``/``per_day`` codes (rolling windows). A code is
kept only as HMAC-SHA256 under the server's pepper (``[codes] pepper``, from the
environment, never in the database), so a stolen database alone does not give
the codes away, and compared in constant time. A code is bound to the client
system that asked for it: only that client can verify it. Verification counts
the attempt in the same write-locked transaction that reads it
(``Database.run_exclusive``), so concurrent guesses cannot exceed the limit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from typing import Any
from collections.abc import Callable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twisted.logger import Logger

from common.config import CodesConfig
from core_client import limits
from common.masking import mask_account, mask_mobile
from core_client.interface import (
    CodeInvalid,
    CodeRateLimited,
    CoreClient,
    IssuedCode,
    UnknownCenter,
)
from core_client.tables import CoreCode, CoreCodeSender

log = Logger(namespace="hotline.core.codes")

_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,31}")
DAY = 86_400


def code_hash(pepper: bytes, code_id: str, code: str) -> bytes:
    """The stored form of a code: keyed by the pepper, bound to the code's own id."""
    return hmac.new(pepper, f"{code_id}\n{code}".encode(), hashlib.sha256).digest()


def mobile_digest(mobile: str) -> str:
    return hashlib.sha256(mobile.encode()).hexdigest()


class VerificationCodes:
    """Issue and verify codes for accounts of several centers, rules from ``config``."""

    def __init__(self, db: Any, cores: Mapping[str, CoreClient], config: CodesConfig, clock: Any,
                 *, randbelow: Callable[[int], int] = secrets.randbelow):
        self._db, self._cores, self.config, self._clock = db, cores, config, clock
        self._randbelow = randbelow
        if not config.pepper_from_env:
            log.warn("no code pepper configured ([codes] pepper or HOTLINE_CODE_PEPPER): a "
                     "random one is used, so codes do not survive a restart or another daemon")

    async def throttle(self, center: str, account_no: str) -> int | None:
        """Count a code request for the account, whether it exists or not (so the answer
        tells nothing): None when it may go on, else the seconds to wait. At most
        ``per_minute`` requests per account and minute."""
        subject = hashlib.sha256(f"{center}\n{account_no}".encode()).hexdigest()[:64]
        now = self._clock.seconds()
        granted = await limits.run(self._db, limits.reserve, self._request_rule, subject, now)
        if granted.allowed:
            return None
        return max(1, math.ceil(granted.locked_until - now))

    @property
    def _request_rule(self) -> limits.Rule:
        return limits.Rule("code-request", self.config.per_minute, 60.0, 60.0)

    async def issue(self, center: str, account_no: str, purpose: str,
                    client: str = "") -> IssuedCode:
        """A new code for the account's registered mobile (from the core), or CodeRateLimited."""
        if not _PURPOSE.fullmatch(purpose):
            raise ValueError("purpose must be lower-case letters, digits and _ (at most 32)")
        core = self._cores.get(center)
        if core is None:
            raise UnknownCenter(f"no core for center {center!r}")
        mobile = await core.registered_mobile(account_no)
        length = self.config.length
        code = f"{self._randbelow(10 ** length):0{length}d}"
        code_id = secrets.token_hex(16)
        now = self._clock.seconds()
        row = dict(id=code_id, center=center, account_no=account_no, purpose=purpose,
                   mobile_digest=mobile_digest(mobile), client=client,
                   code_hash=code_hash(self.config.pepper, code_id, code), created_at=now,
                   expires_at=now + self.config.ttl, attempts=0, used_at=None)
        try:
            retry_after = await self._db.run_exclusive(self._store, row)
        except IntegrityError:  # a concurrent first code for this mobile created the sender
            retry_after = await self._db.run_exclusive(self._store, row)
        if retry_after is not None:
            log.info("verification code refused for {mobile}: rate limit, retry in {s} s",
                     mobile=mask_mobile(mobile), s=retry_after)
            raise CodeRateLimited(retry_after)
        log.info("verification code for {purpose} issued: center {center} account {account} "
                 "mobile {mobile}", purpose=purpose, center=center,
                 account=mask_account(account_no), mobile=mask_mobile(mobile))
        return IssuedCode(code_id=code_id, account_no=account_no, mobile=mobile, purpose=purpose,
                          code=code, expires_at=dt.datetime.fromtimestamp(row["expires_at"]))

    def _store(self, session: Session, row: dict) -> int | None:
        """Insert the code unless a per-mobile limit is reached; then the seconds to wait."""
        digest, now = row["mobile_digest"], row["created_at"]
        sender = session.get(CoreCodeSender, digest, with_for_update=True)
        if sender is None:
            sender = CoreCodeSender(mobile_digest=digest, last_sent_at=now)
            session.add(sender)
            session.flush()
        session.execute(delete(CoreCode).where(CoreCode.mobile_digest == digest,
                                               CoreCode.created_at <= now - DAY))
        sent = session.scalars(select(CoreCode.created_at).where(
            CoreCode.mobile_digest == digest).order_by(CoreCode.created_at)).all()
        wait = 0.0
        for window, limit in ((60, self.config.per_minute), (3600, self.config.per_hour),
                              (DAY, self.config.per_day)):
            recent = [t for t in sent if t > now - window]
            if len(recent) >= limit:
                wait = max(wait, recent[len(recent) - limit] + window - now)
        if wait > 0:
            return max(1, math.ceil(wait))
        session.add(CoreCode(**row))
        sender.last_sent_at = now
        return None

    async def verify(self, center: str, account_no: str, purpose: str, code: str,
                     client: str = "") -> None:
        """Return when ``code`` is the newest live code of the account and purpose that
        ``client`` asked for; consumes it.

        Raises CodeInvalid for a wrong, expired, used or exhausted code (which one is not said).
        """
        ok = await self._db.run_exclusive(self._check, center, account_no, purpose, client,
                                          code.strip(), self._clock.seconds())
        if not ok:
            raise CodeInvalid("verification code is wrong, expired, used or out of attempts")

    def _check(self, session: Session, center: str, account_no: str, purpose: str, client: str,
               code: str, now: float) -> bool:
        row = session.scalars(
            select(CoreCode).where(CoreCode.center == center, CoreCode.account_no == account_no,
                                   CoreCode.purpose == purpose, CoreCode.client == client)
            .order_by(CoreCode.created_at.desc()).limit(1).with_for_update()).first()
        if (row is None or row.used_at is not None or row.expires_at <= now
                or row.attempts >= self.config.max_attempts):
            return False
        row.attempts += 1
        if hmac.compare_digest(code_hash(self.config.pepper, row.id, code), row.code_hash):
            row.used_at = now
            return True
        return False
