"""Tenant principals: the one Kafka user per basic/standard cluster, its password sealed."""

from __future__ import annotations

import secrets

from pydantic import SecretStr
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from streamplane.mothership.store._base import RepoContext
from streamplane.mothership.store.errors import NotFoundError, SecretDecryptionError
from streamplane.mothership.store.physical_clusters import SEALED_PREFIX
from streamplane.mothership.store.records import TenantPrincipal
from streamplane.mothership.store.schema import LogicalClusterRow, TenantPrincipalRow

KIND = "tenant principal"


class TenantPrincipals:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def ensure(self, logical_cluster_id: str) -> TenantPrincipal:
        """The cluster's principal, made on first call: named after the cluster, with a
        fresh random password. Later calls (and concurrent ones) return the same one."""
        with self._ctx.sessions.write() as s:
            row = s.get(TenantPrincipalRow, logical_cluster_id)
            if row is None:
                cluster = s.get(LogicalClusterRow, logical_cluster_id)
                if cluster is None or cluster.deleted_at is not None:
                    raise NotFoundError("logical cluster", logical_cluster_id)
                row = TenantPrincipalRow(
                    logical_cluster_id=logical_cluster_id, username=logical_cluster_id,
                    password=SEALED_PREFIX + self._ctx.secret_box.encrypt(secrets.token_urlsafe(32)),
                    created_at=self._ctx.clock(),
                )
                try:
                    with s.begin_nested():
                        s.add(row)
                except IntegrityError:  # made meanwhile by another writer: use theirs
                    row = s.get(TenantPrincipalRow, logical_cluster_id, populate_existing=True)
                    if row is None:
                        raise
            return self._record(row)

    def get(self, logical_cluster_id: str) -> TenantPrincipal:
        with self._ctx.sessions.read() as s:
            row = s.get(TenantPrincipalRow, logical_cluster_id)
            if row is None:
                raise NotFoundError(KIND, logical_cluster_id)
            return self._record(row)

    def delete(self, logical_cluster_id: str) -> None:
        """Forget the principal (once it is gone from Kafka). Deleting twice is harmless."""
        with self._ctx.sessions.write() as s:
            s.execute(delete(TenantPrincipalRow)
                      .where(TenantPrincipalRow.logical_cluster_id == logical_cluster_id)
                      .execution_options(synchronize_session=False))

    def _record(self, row: TenantPrincipalRow) -> TenantPrincipal:
        if not row.password.startswith(SEALED_PREFIX):
            raise SecretDecryptionError(
                f"the stored password of {KIND} {row.username!r} is not encrypted")
        password = self._ctx.secret_box.decrypt(row.password.removeprefix(SEALED_PREFIX))
        return TenantPrincipal(logical_cluster_id=row.logical_cluster_id, username=row.username,
                               password=SecretStr(password), created_at=row.created_at)
