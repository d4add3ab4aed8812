"""The SMS room's part of the retention purge (common.retention): messages and MO.

SMS messages in a final state lose their destination (masked, 138****8000), text,
parameters and encoded parts; states, times and counts stay for statistics. MO
messages lose their sender (masked) and text; keyword and outcome stay.
"""
from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from common.masking import mask_mobile
from sms.tables import SmsMessage, SmsMo, SmsPart


def purge(session: Session, cutoff: float, now: float) -> dict[str, int]:
    """Anonymise SMS and MO older than ``cutoff``; counts per table."""
    rows = session.execute(select(SmsMessage.id, SmsMessage.destination).where(
        SmsMessage.final_at.is_not(None), SmsMessage.final_at < cutoff,
        SmsMessage.destination.not_like("%*%"))).all()
    for message_id, destination in rows:
        session.execute(update(SmsMessage).where(SmsMessage.id == message_id).values(
            destination=mask_mobile(destination), text="", params="{}"))
    if rows:
        session.execute(update(SmsPart).where(SmsPart.message_id.in_(
            [message_id for message_id, _ in rows])).values(payload=b""))
    mos = session.execute(select(SmsMo.id, SmsMo.source).where(
        SmsMo.received_at < cutoff, or_(SmsMo.text != "", SmsMo.source.not_like("%*%")))).all()
    for mo_id, source in mos:
        session.execute(update(SmsMo).where(SmsMo.id == mo_id).values(
            source=mask_mobile(source), text=""))
    return {"sms_message": len(rows), "sms_mo": len(mos)}
