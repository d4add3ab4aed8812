"""console: the hotline rollup counts lost and fallback-only calls, callers sent to the
agents' queue and those an agent answered, and how many calls have a known duration

Revision ID: console_0005
Revises: console_0004
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "console_0005"
down_revision = "console_0004"
branch_labels = None
depends_on = None

COLUMNS = ("lost", "fallback", "agent_offered", "agent_answered", "timed")


def upgrade() -> None:
    with op.batch_alter_table("console_rollup_calls") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    # Until now every call rolled up had closed with its end time.
    op.execute("UPDATE console_rollup_calls SET timed = calls")


def downgrade() -> None:
    with op.batch_alter_table("console_rollup_calls") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
