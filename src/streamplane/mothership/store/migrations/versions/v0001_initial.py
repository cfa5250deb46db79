"""Initial schema: satellites, physical and logical clusters, API keys, operations,
idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "satellites",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("zone", sa.String(63), nullable=False),
        sa.Column("capacity", _json(), nullable=False),
        sa.Column("status", _json(), nullable=True),
        _ts("last_seen_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_satellites"),
    )
    op.create_table(
        "physical_clusters",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("satellite", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("observed_status", _json(), nullable=True),
        sa.Column("observed_generation", sa.Integer(), nullable=True),
        sa.Column("deleting", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_physical_clusters"),
        sa.ForeignKeyConstraint(
            ["satellite"], ["satellites.name"],
            name="fk_physical_clusters_satellite_satellites", ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "generation >= 1", name="ck_physical_clusters_generation_positive"
        ),
    )
    op.create_index(
        "ix_physical_clusters_satellite", "physical_clusters", ["satellite"], unique=False
    )
    op.create_table(
        "logical_clusters",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("cku", sa.Integer(), nullable=True),
        sa.Column("zones", sa.Integer(), nullable=False),
        sa.Column("kafka_version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("physical_cluster_id", sa.String(63), nullable=True),
        sa.Column("bootstrap", sa.String(1024), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_logical_clusters"),
        sa.ForeignKeyConstraint(
            ["physical_cluster_id"], ["physical_clusters.id"],
            name="fk_logical_clusters_physical_cluster_id_physical_clusters",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("generation >= 1", name="ck_logical_clusters_generation_positive"),
        sa.CheckConstraint("zones >= 1", name="ck_logical_clusters_zones_positive"),
        sa.CheckConstraint("cku IS NULL OR cku >= 1", name="ck_logical_clusters_cku_positive"),
    )
    op.create_index("ix_logical_clusters_status", "logical_clusters", ["status"])
    op.create_index(
        "ix_logical_clusters_physical_cluster_id", "logical_clusters", ["physical_cluster_id"]
    )
    op.create_index(
        "uq_logical_clusters_live_name",
        "logical_clusters",
        ["name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("logical_cluster_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("role", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["logical_cluster_id"], ["logical_clusters.id"],
            name="fk_api_keys_logical_cluster_id_logical_clusters", ondelete="CASCADE",
        ),
    )
    op.create_index("ix_api_keys_logical_cluster_id", "api_keys", ["logical_cluster_id"])
    op.create_table(
        "operations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request", _json(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 100", name="ck_operations_progress_range"
        ),
    )
    op.create_index("ix_operations_target_id", "operations", ["target_id"])
    op.create_index("ix_operations_status", "operations", ["status"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", _json(), nullable=True),
        sa.Column("operation_id", sa.String(32), nullable=True),
        _ts("created_at"),
        _ts("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"],
            name="fk_idempotency_keys_operation_id_operations", ondelete="SET NULL",
        ),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    for table in (
        "idempotency_keys", "operations", "api_keys", "logical_clusters",
        "physical_clusters", "satellites",
    ):
        op.drop_table(table)
