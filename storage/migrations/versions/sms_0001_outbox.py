"""sms: outbox messages and parts, unmatched receipts, opt-outs, MO, alert cursors, counters

Revision ID: sms_0001
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "sms_0001"
down_revision = None
branch_labels = ("sms",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("klass", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sensitive", sa.Integer, nullable=False),
        sa.Column("destination", sa.String(24), nullable=False),
        sa.Column("idem_key", sa.String(128), nullable=False),
        sa.Column("part_count", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("possible_duplicates", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("valid_until", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(48), nullable=True),
        sa.Column("smsc", sa.String(48), nullable=True),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=True),
        sa.Column("final_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_message"),
        sa.UniqueConstraint("center", "idem_key", name="uq_sms_message_center_idem"),
    )
    op.create_index("ix_sms_message_ready", "sms_message",
                    ["state", "priority", "next_attempt_at"])
    op.create_index("ix_sms_message_dest", "sms_message", ["destination", "created_at"])
    op.create_table(
        "sms_part",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("data_coding", sa.Integer, nullable=False),
        sa.Column("esm_class", sa.Integer, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("smpp_id", sa.String(72), nullable=True),
        sa.Column("smsc", sa.String(48), nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("submitted_at", sa.Float, nullable=True),
        sa.Column("done_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_part"),
        sa.ForeignKeyConstraint(["message_id"], ["sms_message.id"], ondelete="CASCADE",
                                name="fk_sms_part_message_id_sms_message"),
        sa.UniqueConstraint("message_id", "seq", name="uq_sms_part_message_seq"),
    )
    op.create_index("ix_sms_part_smpp_id", "sms_part", ["smpp_id"])
    op.create_table(
        "sms_unmatched_receipt",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("smpp_id", sa.String(72), nullable=False),
        sa.Column("smsc", sa.String(48), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("error", sa.String(32), nullable=True),
        sa.Column("done_at", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sms_unmatched_receipt"),
    )
    op.create_index("ix_sms_unmatched_receipt_smpp_id", "sms_unmatched_receipt", ["smpp_id"])
    op.create_table(
        "sms_optout",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("mobile", sa.String(24), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sms_optout"),
        sa.UniqueConstraint("center", "mobile", name="uq_sms_optout_center_mobile"),
    )
    op.create_table(
        "sms_mo",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("center", sa.String(32), nullable=True),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("destination", sa.String(24), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("smsc", sa.String(48), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("keyword", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_mo"),
    )
    op.create_table(
        "sms_alert_cursor",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("cursor", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("center", name="pk_sms_alert_cursor"),
    )
    op.create_table(
        "sms_counter",
        sa.Column("name", sa.String(48), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sms_counter"),
    )


def downgrade() -> None:
    for table in ("sms_counter", "sms_alert_cursor", "sms_mo", "sms_optout",
                  "sms_unmatched_receipt", "sms_part", "sms_message"):
        op.drop_table(table)
