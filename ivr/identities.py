"""Who an identified caller is outlives the daemon driving the call, so that a daemon
adopting the call (``ivr.asterisk.adoption``) resumes it as identified instead of asking again.

Once the core accepted the caller's password, the driving daemon keeps in ``ivr_identity``
the account number the core found, keyed by the call's Asterisk uniqueid, with an expiry:
only that the core said yes, never the password nor the ID number keyed. The write goes to
the database's thread pool and nobody waits for it: a lost write costs the caller no more
than identifying again after an adoption. The row goes when the call's record closes
(``ivr.records``, in the same transaction, also when a dead daemon's open record is settled
as lost at its next start); a row past its expiry (a call whose daemon died and never came
back) goes with the next identification or settlement on any daemon.

The expiry is ``[ivr] identity_minutes`` (an hour by default), longer than any IVR call:
a row that outlived its call is swept once it has passed.

An adopted call looks its row up as it resumes, while its menu is replayed, and asks the
core for the account by number again; no row, an expired one, or a database or core that
does not answer within ``RESTORE_TIMEOUT`` leaves the caller to identify again.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred, TimeoutError
from twisted.logger import Logger
from twisted.python.failure import Failure

from core_client.interface import Account, CoreClient, CoreError
from ivr.tables import IvrCall, IvrIdentity
from storage.db import CommitOutcomeUnknown

if TYPE_CHECKING:
    from ivr.flows.context import CallContext
    from ivr.records import CallRecord

# The replayed menu takes longer than this: a caller choosing a service waits for no more.
RESTORE_TIMEOUT = 3.0
# What may fail on the way, each costing only a re-identification.
NOT_KEPT = (SQLAlchemyError, CommitOutcomeUnknown)
NOT_RESTORED = (*NOT_KEPT, CoreError, TimeoutError)


def remember(session, uniqueid: str, call_id: int, center: str, account_no: str, now: float,
             ttl: float) -> bool:
    """Keep the call's identity while its record is open (a write the call's end overtook
    keeps nothing); expired rows go on the way. False when nothing was kept."""
    forget_expired(session, now)
    call = session.get(IvrCall, call_id)
    if call is None or call.outcome is not None:
        return False
    session.merge(IvrIdentity(uniqueid=uniqueid, call_id=call_id, center=center,
                              account_no=account_no, identified_at=now, expires_at=now + ttl))
    return True


def recall(session, uniqueid: str, center: str, now: float) -> str | None:
    """The account number kept for the call, None when none is kept or it expired."""
    row = session.get(IvrIdentity, uniqueid)
    if row is None or row.center != center or row.expires_at <= now:
        return None
    return row.account_no


def forget(session, uniqueids: Iterable[str]) -> None:
    """The calls' identities go (their records closed)."""
    gone = list(uniqueids)
    if gone:
        session.execute(delete(IvrIdentity).where(IvrIdentity.uniqueid.in_(gone)))


def forget_expired(session, now: float) -> None:
    session.execute(delete(IvrIdentity).where(IvrIdentity.expires_at <= now))


class Identities:
    """Keeps and restores identified callers' identities for adopted calls (see the module)."""

    log = Logger(namespace="hotline.ivr")

    def __init__(self, db, clock, ttl: float, timeout: float = RESTORE_TIMEOUT):
        self.db, self.clock, self.ttl, self.timeout = db, clock, ttl, timeout

    def remember(self, record: CallRecord, account: Account) -> Deferred:
        """Keep who the call's caller is; a failure is logged, never raised to the call."""
        d = self.db.run(remember, record.uniqueid, record.id, record.center, account.account_no,
                        self.clock.seconds(), self.ttl)
        return d.addErrback(self._not_kept, record)

    def _not_kept(self, failure: Failure, record: CallRecord) -> None:
        failure.trap(*NOT_KEPT)
        # The type only: a driver's message may quote the statement's values.
        self.log.warn("identity of call {uniqueid} not kept ({why}): its caller identifies "
                      "again if the call is adopted", uniqueid=record.uniqueid,
                      why=failure.type.__name__)

    def restore(self, ctx: CallContext) -> None:
        """For an adopted call: look up the identity its first daemon kept, and set
        ``ctx.account`` when there is one; ``ctx.restoring`` is the look, which
        identification waits for before it asks the caller."""
        d = Deferred.fromCoroutine(self._recall(ctx.record, ctx.core))
        d.addTimeout(self.timeout, self.clock)

        def found(account: Account | None) -> None:
            if account is not None and ctx.account is None:
                ctx.account, ctx.record.identified = account, True

        ctx.restoring = d.addCallbacks(found, self._not_restored, errbackArgs=(ctx.record,))

    async def _recall(self, record: CallRecord, core: CoreClient) -> Account | None:
        account_no = await self.db.run(recall, record.uniqueid, record.center,
                                       self.clock.seconds())
        if account_no is None:
            return None
        return await core.find_account(account_no=account_no)

    def _not_restored(self, failure: Failure, record: CallRecord) -> None:
        failure.trap(*NOT_RESTORED)
        self.log.warn("identity of adopted call {uniqueid} not restored ({why}): its caller "
                      "identifies again", uniqueid=record.uniqueid, why=failure.type.__name__)
