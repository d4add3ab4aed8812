"""console: SMS template drafts and published texts (edit, review by a second person, publish)

Revision ID: console_0003
Revises: console_0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "console_0003"
down_revision = "console_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sms_template",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("draft_text", sa.Text, nullable=True),
        sa.Column("draft_by", sa.String(64), nullable=True),
        sa.Column("draft_at", sa.Float, nullable=True),
        sa.Column("published_text", sa.Text, nullable=True),
        sa.Column("published_by", sa.String(64), nullable=True),
        sa.Column("published_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("center", "name", name="pk_console_sms_template"),
    )


def downgrade() -> None:
    op.drop_table("console_sms_template")
