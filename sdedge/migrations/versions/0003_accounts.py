"""Accounts: the users and api_tokens tables, and each job's owner.

Revision ID: 0003
Revises: 0002

Jobs from before this revision get no owner (NULL): on a server with accounts only admins see them.
Each step is skipped when its table, column or index is there already (a database whose tables were
made by create_all from the current models, before it was stamped).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "owner" not in {column["name"] for column in inspector.get_columns("jobs")}:
        with op.batch_alter_table("jobs") as batch:
            batch.add_column(sa.Column("owner", sa.String(40), nullable=True))
    if "jobs_owner_status" not in {index["name"] for index in inspector.get_indexes("jobs")}:
        op.create_index("jobs_owner_status", "jobs", ["owner", "status"])
    if "users" not in tables:
        op.create_table(
            "users",
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("name", sa.String(64), nullable=False, unique=True),
            sa.Column("password_hash", sa.String(256), nullable=False),
            sa.Column("admin", sa.Boolean, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if "api_tokens" not in tables:
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
            sa.Column("label", sa.String(100), nullable=False),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("last_used_at", sa.Float, nullable=True),
        )
        op.create_index("api_tokens_user", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_index("jobs_owner_status", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
