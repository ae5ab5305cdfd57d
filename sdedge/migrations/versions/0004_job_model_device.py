"""Each job's model and device class: which model of the library it runs on, which kind of device may run it.

Revision ID: 0004
Revises: 0003

`model` is the model id the job asked for (NULL: the server's default model, as every job before this
revision). `device` is the device class the job asked for (`CPU`, `GPU`, `NPU`; NULL: any worker).
Both are columns, not JSON in `params`, because the claim filters and orders on them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {column["name"] for column in inspector.get_columns("jobs")}
    with op.batch_alter_table("jobs") as batch:
        if "model" not in columns:
            batch.add_column(sa.Column("model", sa.String(200), nullable=True))
        if "device" not in columns:
            batch.add_column(sa.Column("device", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("device")
        batch.drop_column("model")
