"""Gateway credentials: SCRAM verifiers of API keys, and one Kafka principal per tenant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("scram", _json(), nullable=True))
    op.create_table(
        "tenant_principals",
        sa.Column("logical_cluster_id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("password", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("logical_cluster_id", name="pk_tenant_principals"),
        sa.ForeignKeyConstraint(
            ["logical_cluster_id"], ["logical_clusters.id"],
            name="fk_tenant_principals_logical_cluster_id_logical_clusters",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("tenant_principals")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scram")
