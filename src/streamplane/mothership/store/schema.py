"""The tables, as SQLAlchemy 2 typed ORM classes. Migrations create them; a test checks
that the two agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

#: constraint names must be stable: migrations refer to them by name
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite (which has no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value!r}; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON text on SQLite, JSONB on PostgreSQL. ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SatelliteRow(Base):
    __tablename__ = "satellites"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    zone: Mapped[str] = mapped_column(String(63))
    capacity: Mapped[dict[str, Any]] = mapped_column(json_type())
    status: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PhysicalClusterRow(Base):
    __tablename__ = "physical_clusters"
    __table_args__ = (CheckConstraint("generation >= 1", name="generation_positive"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    satellite: Mapped[str] = mapped_column(
        String(63), ForeignKey("satellites.name", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    #: the PSC as JSON, with every secret field encrypted by the SecretBox
    spec: Mapped[dict[str, Any]] = mapped_column(json_type())
    generation: Mapped[int] = mapped_column(Integer)
    observed_status: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    observed_generation: Mapped[int | None] = mapped_column(Integer)
    deleting: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogicalClusterRow(Base):
    __tablename__ = "logical_clusters"
    __table_args__ = (
        CheckConstraint("generation >= 1", name="generation_positive"),
        CheckConstraint("zones >= 1", name="zones_positive"),
        CheckConstraint("cku IS NULL OR cku >= 1", name="cku_positive"),
        # deleted clusters keep their row (and name) for history; live names are unique
        Index(
            "uq_logical_clusters_live_name",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    cku: Mapped[int | None] = mapped_column(Integer)
    zones: Mapped[int] = mapped_column(Integer)
    kafka_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str] = mapped_column(Text, server_default="")
    physical_cluster_id: Mapped[str | None] = mapped_column(
        String(63), ForeignKey("physical_clusters.id", ondelete="SET NULL"), index=True
    )
    bootstrap: Mapped[str | None] = mapped_column(String(1024))
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    logical_cluster_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("logical_clusters.id", ondelete="CASCADE"), index=True
    )
    #: "scrypt$n$r$p$salt$hash"; the secret itself is never stored
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, server_default="")
    role: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: SCRAM verifiers by mechanism (salt, iterations, StoredKey, ServerKey, base64);
    #: NULL for keys made before revision 0002, which log in with SASL/PLAIN only
    scram: Mapped[dict[str, Any] | None] = mapped_column(json_type())


class TenantPrincipalRow(Base):
    """The Kafka user a basic/standard cluster's clients act as on its shared cluster
    (the gateway logs in as it); API keys never reach Kafka themselves."""

    __tablename__ = "tenant_principals"

    logical_cluster_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("logical_clusters.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(128))
    #: "fernet:<token>", encrypted by the SecretBox
    password: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OperationRow(Base):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: sha256 of the canonical request body
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(json_type(), nullable=True)
    operation_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("operations.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
