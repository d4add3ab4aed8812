"""sms: the outbox's rewrites as HOT updates and a ready index in the claim's order

On PostgreSQL a message and its parts are rewritten about three times each, and with
full heap pages none of those rewrites stayed on its page (a HOT update, which writes no
index entry): each wrote an entry into every index. Pages of sms_message and sms_part
are now filled to 70 % by inserts (a part's claim and receipt change no indexed column),
the ready index keeps only the messages in flight (queued, submitting, submitted: a
message's state is indexed, so its rewrites stay non-HOT, but a final one adds no entry)
and the SMSC-id index only parts that have an id. On both databases the ready index is in the
claim's order (priority descending, due time, id), so a claim reads its LIMIT instead
of every queued message of the top priority. SQLite has no fill factor or partial
index here: it gets the new column order only. A fill factor applies to pages written
from then on; ``VACUUM FULL`` rewrites the old ones when an operator wants it. The two
index builds read the whole outbox and hold its writes off meanwhile (1.4 s per
million messages and parts on the 2-core bench machine): on a large outbox, run
``hotline db upgrade`` before starting the daemons.

Revision ID: sms_0004
Revises: sms_0003
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "sms_0004"
down_revision = "sms_0003"
branch_labels = None
depends_on = None

TABLES = ("sms_message", "sms_part")
IN_FLIGHT = "state IN ('queued', 'submitting', 'submitted')"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.drop_index("ix_sms_message_ready", "sms_message")
    op.create_index("ix_sms_message_ready", "sms_message",
                    ["state", sa.text("priority DESC"), "next_attempt_at", "id"],
                    postgresql_where=sa.text(IN_FLIGHT))
    if not _postgresql():
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")
    op.drop_index("ix_sms_part_smpp_id", "sms_part")
    op.create_index("ix_sms_part_smpp_id", "sms_part", ["smpp_id"],
                    postgresql_where=sa.text("smpp_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_sms_message_ready", "sms_message")
    op.create_index("ix_sms_message_ready", "sms_message",
                    ["state", "priority", "next_attempt_at"])
    if not _postgresql():
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.drop_index("ix_sms_part_smpp_id", "sms_part")
    op.create_index("ix_sms_part_smpp_id", "sms_part", ["smpp_id"])
