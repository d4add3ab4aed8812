"""ivr: call records and key presses per menu item

Revision ID: ivr_0001
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "ivr_0001"
down_revision = None
branch_labels = ("ivr",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_call",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance", sa.String(40), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("dnid", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("answered_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("keys", sa.Text, nullable=False),
        sa.Column("identified", sa.Integer, nullable=False),
        sa.Column("served", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("survey", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ivr_call"),
    )
    op.create_index("ix_ivr_call_center_started", "ivr_call", ["center", "started_at"])
    op.create_index("ix_ivr_call_uniqueid", "ivr_call", ["uniqueid"])
    op.create_table(
        "ivr_keypress",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer, nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("node", sa.String(48), nullable=False),
        sa.Column("key", sa.String(8), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ivr_keypress"),
        sa.ForeignKeyConstraint(["call_id"], ["ivr_call.id"], ondelete="CASCADE",
                                name="fk_ivr_keypress_call_id_ivr_call"),
    )
    op.create_index("ix_ivr_keypress_center_node", "ivr_keypress", ["center", "node"])


def downgrade() -> None:
    op.drop_table("ivr_keypress")
    op.drop_table("ivr_call")
