"""console: service hours per menu item and center, and each center's holiday calendar

Revision ID: console_0004
Revises: console_0003
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "console_0004"
down_revision = "console_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("console_menu_switch") as batch:
        batch.add_column(sa.Column("hours", sa.String(16), nullable=True))
        batch.add_column(sa.Column("days", sa.String(16), nullable=True))
    op.create_table(
        "console_holiday",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("center", "day", name="pk_console_holiday"),
    )


def downgrade() -> None:
    op.drop_table("console_holiday")
    with op.batch_alter_table("console_menu_switch") as batch:
        batch.drop_column("days")
        batch.drop_column("hours")
