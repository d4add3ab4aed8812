"""Verification codes: issued only to the account's registered mobile, stored only hashed.

Rules (all from ``[codes]``): ``length`` digits from ``secrets``; a lifetime of
``ttl`` seconds; at most ``max_attempts`` verify attempts per code; only the
newest code of an (account, purpose) counts and only once; per mobile at most
``per_minute``/``per_hour``/``per_day`` codes (rolling windows). A code is kept
as HMAC-SHA256 under its own random salt and compared in constant time.
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


def code_hash(salt: bytes, code: str) -> bytes:
    return hmac.new(salt, code.encode(), hashlib.sha256).digest()


def mobile_digest(mobile: str) -> str:
    return hashlib.sha256(mobile.encode()).hexdigest()


class VerificationCodes:
    """Issue and verify codes for accounts of several centers, rules from ``config``."""

    def __init__(self, db: Any, cores: Mapping[str, CoreClient], config: CodesConfig, clock: Any,
                 *, randbelow: Callable[[int], int] = secrets.randbelow):
        self._db, self._cores, self.config, self._clock = db, cores, config, clock
        self._randbelow = randbelow

    async def issue(self, center: str, account_no: str, purpose: str) -> IssuedCode:
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
        salt = secrets.token_bytes(16)
        now = self._clock.seconds()
        row = dict(id=code_id, center=center, account_no=account_no, purpose=purpose,
                   mobile_digest=mobile_digest(mobile), salt=salt,
                   code_hash=code_hash(salt, code), created_at=now,
                   expires_at=now + self.config.ttl, attempts=0, used_at=None)
        try:
            retry_after = await self._db.run(self._store, row)
        except IntegrityError:  # a concurrent first code for this mobile created the sender
            retry_after = await self._db.run(self._store, row)
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

    async def verify(self, center: str, account_no: str, purpose: str, code: str) -> None:
        """Return when ``code`` is the newest live code of the account and purpose; consumes it.

        Raises CodeInvalid for a wrong, expired, used or exhausted code (which one is not said).
        """
        ok = await self._db.run(self._check, center, account_no, purpose, code.strip(),
                                self._clock.seconds())
        if not ok:
            raise CodeInvalid("verification code is wrong, expired, used or out of attempts")

    def _check(self, session: Session, center: str, account_no: str, purpose: str, code: str,
               now: float) -> bool:
        row = session.scalars(
            select(CoreCode).where(CoreCode.center == center, CoreCode.account_no == account_no,
                                   CoreCode.purpose == purpose)
            .order_by(CoreCode.created_at.desc()).limit(1).with_for_update()).first()
        if (row is None or row.used_at is not None or row.expires_at <= now
                or row.attempts >= self.config.max_attempts):
            return False
        row.attempts += 1
        if hmac.compare_digest(code_hash(row.salt, code), row.code_hash):
            row.used_at = now
            return True
        return False
