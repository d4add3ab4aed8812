"""door: clients, audit, nonces, counters, message owners, tallies, events

Revision ID: door_0001
Revises:
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "door_0001"
down_revision = None
branch_labels = ("door",)
depends_on = "sms_0001"


def upgrade() -> None:
    op.create_table(
        "door_client",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("secret_env", sa.String(64), nullable=False),
        sa.Column("system_id", sa.String(16), nullable=False),
        sa.Column("templates", sa.Text, nullable=False),
        sa.Column("classes", sa.Text, nullable=False),
        sa.Column("free_text", sa.Integer, nullable=False),
        sa.Column("daily_quota", sa.Integer, nullable=False),
        sa.Column("rate_per_second", sa.Integer, nullable=False),
        sa.Column("source_exts", sa.Text, nullable=False),
        sa.Column("keywords", sa.Text, nullable=False),
        sa.Column("ip_allow", sa.Text, nullable=False),
        sa.Column("callback_url", sa.String(255), nullable=True),
        sa.Column("callback_parts", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_door_client"),
        sa.UniqueConstraint("system_id", name="uq_door_client_system_id"),
    )
    op.create_table(
        "door_audit",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_door_audit"),
    )
    op.create_table(
        "door_nonce",
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("client", "nonce", name="pk_door_nonce"),
    )
    op.create_table(
        "door_counter",
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("bucket", sa.String(24), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("client", "bucket", name="pk_door_counter"),
    )
    op.create_table(
        "door_message",
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("notified", sa.String(12), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_door_message"),
    )
    op.create_index("ix_door_message_client", "door_message", ["client", "created_at"])
    op.create_index("ix_door_message_notified", "door_message", ["notified"])
    op.create_table(
        "door_tally",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("center", "client", "template", "day", "what",
                                name="pk_door_tally"),
    )
    op.create_table(
        "door_event",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("client", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("dedup_id", sa.String(96), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("acked_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_door_event"),
        sa.UniqueConstraint("dedup_id", name="uq_door_event_dedup_id"),
    )
    op.create_index("ix_door_event_due", "door_event", ["channel", "state", "next_at"])
    op.create_index("ix_door_event_client", "door_event", ["client", "state"])


def downgrade() -> None:
    for name in ("door_event", "door_tally", "door_message", "door_counter", "door_nonce",
                 "door_audit", "door_client"):
        op.drop_table(name)
