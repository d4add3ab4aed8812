"""sms: the address an early receipt names, so it is matched only to a part sent there

Revision ID: sms_0003
Revises: sms_0002
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "sms_0003"
down_revision = "sms_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_unmatched_receipt") as batch:
        batch.add_column(sa.Column("destination", sa.String(24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sms_unmatched_receipt") as batch:
        batch.drop_column("destination")
