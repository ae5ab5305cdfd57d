"""The fleet: leases on running jobs, the node that ran each job, the nodes, and files every node can serve.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("lease_expires_at", sa.Float, nullable=True))
        jobs.add_column(sa.Column("node", sa.String(64), nullable=True))
    op.create_index("jobs_leases", "jobs", ["status", "lease_expires_at"])
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("workers", sa.Text, nullable=False),  # JSON: device, model and current job of each worker
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("name", sa.String(210), primary_key=True),
        sa.Column("job_id", sa.String(40), nullable=True, index=True),
        sa.Column("kind", sa.String(16), nullable=False),  # image, preview, input
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("files")
    op.drop_table("nodes")
    op.drop_index("jobs_leases", table_name="jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("node")
        jobs.drop_column("lease_expires_at")
