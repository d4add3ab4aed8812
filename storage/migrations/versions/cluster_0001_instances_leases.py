"""cluster: instances with heartbeats, and leases on work done by one instance at a time

Revision ID: cluster_0001
Revises:
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "cluster_0001"
down_revision = None
branch_labels = ("cluster",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_instance",
        sa.Column("instance", sa.String(40), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("instance", name="pk_cluster_instance"),
    )
    op.create_table(
        "cluster_lease",
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("holder", sa.String(40), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cluster_lease"),
    )


def downgrade() -> None:
    op.drop_table("cluster_lease")
    op.drop_table("cluster_instance")
