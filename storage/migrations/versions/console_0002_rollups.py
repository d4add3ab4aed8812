"""console: report rollups (hotline and key presses per day and center; SMS per day, center,
template and carrier)

Revision ID: console_0002
Revises: console_0001
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "console_0002"
down_revision = "console_0001"
branch_labels = None
depends_on = "sms_0001"  # the index on sms_message


def upgrade() -> None:
    op.create_table(
        "console_rollup_calls",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        *(sa.Column(n, sa.Integer, nullable=False) for n in (
            "calls", "ivr_handled", "transferred", "abandoned", "failed")),
        sa.Column("seconds", sa.Float, nullable=False),
        *(sa.Column(f"survey_{i}", sa.Integer, nullable=False) for i in (1, 2, 3)),
        sa.PrimaryKeyConstraint("day", "center", name="pk_console_rollup_calls"),
    )
    op.create_table(
        "console_rollup_sms",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(48), nullable=False),
        *(sa.Column(n, sa.Integer, nullable=False) for n in (
            "pushed", "sent", "delivered", "failed", "expired")),
        sa.PrimaryKeyConstraint("day", "center", "template", "carrier",
                                name="pk_console_rollup_sms"),
    )
    op.create_table(
        "console_rollup_keys",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("key", sa.String(8), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("day", "center", "node", "key", name="pk_console_rollup_keys"),
    )
    op.create_table(
        "console_rollup_mark",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_console_rollup_mark"),
    )
    # The SMS fold reads messages by the time they reached their final state; the dashboard
    # and the search read a center's messages of a day.
    op.create_index("ix_sms_message_final_at", "sms_message", ["final_at"])
    op.create_index("ix_sms_message_center_created", "sms_message", ["center", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_message_center_created", "sms_message")
    op.drop_index("ix_sms_message_final_at", "sms_message")
    op.drop_table("console_rollup_mark")
    op.drop_table("console_rollup_keys")
    op.drop_table("console_rollup_sms")
    op.drop_table("console_rollup_calls")
