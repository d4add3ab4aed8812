"""core_client: attempt limits per subject; codes peppered (no stored salt) and bound to a client

Revision ID: core_client_0002
Revises: core_client_0001
Create Date: 2026-11-30

Codes issued before this revision were hashed under their stored salt: they are
dropped (they live minutes anyway). Lockouts move to security_limit.
"""
from alembic import op
import sqlalchemy as sa

revision = "core_client_0002"
down_revision = "core_client_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_limit",
        sa.Column("scope", sa.String(48), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", name="pk_security_limit"),
    )
    op.create_index("ix_security_limit_updated_at", "security_limit", ["updated_at"])
    op.drop_table("core_lockout")
    op.execute("DELETE FROM core_code")
    with op.batch_alter_table("core_code") as batch:
        batch.drop_column("salt")
        batch.add_column(sa.Column("client", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    op.execute("DELETE FROM core_code")
    with op.batch_alter_table("core_code") as batch:
        batch.drop_column("client")
        batch.add_column(sa.Column("salt", sa.LargeBinary(16), nullable=False,
                                   server_default=""))
    op.create_table(
        "core_lockout",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("center", "account_no", name="pk_core_lockout"),
    )
    op.drop_index("ix_security_limit_updated_at", table_name="security_limit")
    op.drop_table("security_limit")
