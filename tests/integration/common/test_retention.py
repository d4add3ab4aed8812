"""Retention: personal data older than the period is anonymised or deleted, the rest stays."""
from __future__ import annotations

from sqlalchemy import select

from common.retention import DAY, purge_all
from core_client import retention as core_retention
from core_client.tables import SecurityLimit
from sms import retention as sms_retention
from sms.tables import SmsMessage, SmsMo, SmsPart
from storage.db import Database

NOW = 1_800_000_000.0
PURGES = [sms_retention.purge, core_retention.purge]


def message(session, mobile, final_at):
    row = SmsMessage(center="demo", klass="transaction", priority=1, template="t",
                     params='{"balance": "1.00"}', text="【示例】余额1.00元", destination=mobile,
                     idem_key=mobile + str(final_at), part_count=1, state="delivered",
                     next_attempt_at=0, valid_until=0, created_at=0, final_at=final_at)
    session.add(row)
    session.flush()
    session.add(SmsPart(message_id=row.id, seq=1, payload="余额".encode("utf-16-be"),
                        data_coding=8, esm_class=0, state="delivered"))


def test_old_personal_data_is_anonymised_and_recent_data_kept(tmp_path):
    """A 200-day-old delivered SMS loses its mobile and text, an old MO its sender and text,
    an old unlocked counter goes; yesterday's rows are untouched; a second run is a no-op."""
    db = Database(f"sqlite:///{tmp_path / 'r.db'}", None, 1)
    db.create_all()

    def fill(s):
        message(s, "13800138000", NOW - 200 * DAY)
        message(s, "13900139000", NOW - DAY)
        s.add(SmsMo(center="demo", source="13700137000", destination="12329", text="YE",
                    smsc="x", received_at=NOW - 200 * DAY))
        s.add(SecurityLimit(scope="pin-caller", subject="8100", failures=2,
                            window_start=NOW - 200 * DAY, locked_until=None,
                            updated_at=NOW - 200 * DAY))

    db.run_sync(fill)
    assert db.run_sync(purge_all, PURGES, NOW, 180) == {
        "sms_message": 1, "sms_mo": 1, "security_limit": 1, "core_code": 0}
    with db.sessions() as s:
        rows = s.execute(select(SmsMessage.destination, SmsMessage.text)
                         .order_by(SmsMessage.id)).all()
        assert rows == [("138****8000", ""), ("13900139000", "【示例】余额1.00元")]
        assert sorted(len(p) for p in s.scalars(select(SmsPart.payload))) == [0, 4]
        assert s.execute(select(SmsMo.source, SmsMo.text)).one() == ("137****7000", "")
        assert s.scalars(select(SecurityLimit)).all() == []
    assert db.run_sync(purge_all, PURGES, NOW, 180) == {
        "sms_message": 0, "sms_mo": 0, "security_limit": 0, "core_code": 0}
    db.engine.dispose()
