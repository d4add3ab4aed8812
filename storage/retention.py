"""Personal data kept no longer than it serves: a daily purge after ``[database] retention_days``.

What goes, for rows older than the period (PIPL: keep personal information only
as long as the purpose needs it):

- SMS messages in a final state: the destination is masked (138****8000), the
  text, parameters and encoded parts are emptied; states, times and counts stay
  for statistics;
- MO messages: the sender is masked and the text emptied (keyword and outcome stay);
- attempt counters and lockouts (``security_limit``) no longer locking anything;
- verification codes long expired (only their hashes were kept).

Call records already keep only a masked caller. Opt-outs are kept: they are
what the person asked for.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from common.masking import mask_mobile
from core_client.tables import CoreCode, SecurityLimit
from sms.tables import SmsMessage, SmsMo, SmsPart

log = Logger(namespace="hotline.storage.retention")

DAY = 86_400.0


def purge(session: Session, now: float, days: float) -> dict[str, int]:
    """Anonymise or delete what is older than ``days``; counts per kind of row."""
    cutoff = now - days * DAY
    done = {}
    old = select(SmsMessage.id, SmsMessage.destination).where(
        SmsMessage.final_at.is_not(None), SmsMessage.final_at < cutoff,
        SmsMessage.destination.not_like("%*%"))
    rows = session.execute(old).all()
    for message_id, destination in rows:
        session.execute(update(SmsMessage).where(SmsMessage.id == message_id).values(
            destination=mask_mobile(destination), text="", params="{}"))
    if rows:
        session.execute(update(SmsPart).where(
            SmsPart.message_id.in_(select(SmsMessage.id).where(
                SmsMessage.final_at < cutoff))).values(payload=b""))
    done["sms_message"] = len(rows)
    mos = session.execute(select(SmsMo.id, SmsMo.source).where(
        SmsMo.received_at < cutoff, or_(SmsMo.text != "", SmsMo.source.not_like("%*%")))).all()
    for mo_id, source in mos:
        session.execute(update(SmsMo).where(SmsMo.id == mo_id).values(
            source=mask_mobile(source), text=""))
    done["sms_mo"] = len(mos)
    done["security_limit"] = session.execute(delete(SecurityLimit).where(
        SecurityLimit.updated_at < cutoff,
        or_(SecurityLimit.locked_until.is_(None), SecurityLimit.locked_until < now))).rowcount
    done["core_code"] = session.execute(delete(CoreCode).where(
        CoreCode.expires_at < min(cutoff, now - DAY))).rowcount
    return done


async def run_retention(db, clock, days: float) -> dict[str, int]:
    """One purge on the database's pool; logs what it did."""
    done = await db.run(purge, clock.seconds(), days)
    if any(done.values()):
        log.info("retention ({days:g} days): anonymised {m} SMS and {mo} MO, deleted {l} "
                 "attempt counters and {c} old codes", days=days, m=done["sms_message"],
                 mo=done["sms_mo"], l=done["security_limit"], c=done["core_code"])
    return done


def schedule_retention(scheduler, db, clock, days: float) -> None:
    """A daily job on the daemon's scheduler, the first five minutes after start (so a
    daemon restarted daily still purges); ``days`` 0 keeps everything."""
    if days <= 0:
        return

    def job() -> Deferred:
        d = Deferred.fromCoroutine(run_retention(db, clock, days))
        d.addErrback(lambda f: log.failure("retention purge failed", f))
        return d

    first = dt.datetime.now(scheduler.timezone) + dt.timedelta(minutes=5)
    scheduler.add_job(job, "interval", hours=24, id="retention", max_instances=1,
                      coalesce=True, replace_existing=True, next_run_time=first)
