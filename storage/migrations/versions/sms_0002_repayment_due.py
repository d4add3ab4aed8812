"""sms: repayments due, for the daily reminder job

Revision ID: sms_0002
Revises: sms_0001
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa

revision = "sms_0002"
down_revision = "sms_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_repayment_due",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("loan_tail", sa.String(8), nullable=False),
        sa.Column("amount", sa.String(24), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("method", sa.String(24), nullable=False),
        sa.Column("reminded_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sms_repayment_due"),
        sa.UniqueConstraint("center", "account_no", "due_date", name="uq_sms_repayment_due"),
    )
    op.create_index("ix_sms_repayment_due_open", "sms_repayment_due",
                    ["center", "reminded_at", "due_date"])


def downgrade() -> None:
    op.drop_index("ix_sms_repayment_due_open", "sms_repayment_due")
    op.drop_table("sms_repayment_due")
