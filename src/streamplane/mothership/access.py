"""Admin access to the Kafka cluster behind a logical cluster, as its super-user.

A dedicated cluster is the whole physical cluster; a basic or standard cluster is the set
of resources under its prefix on a shared one, which is how its topics, users and ACLs are
found, created and cleaned up. Its clients reach it through the gateway of the shared
cluster, which logs in as the tenant's own Kafka user: one SCRAM user per logical
cluster, allowed only what lies under the tenant's prefix.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from streamplane.capacity import tenant_quotas
from streamplane.kafka import ClusterAdmin, UserNotFoundError
from streamplane.models.status import ClusterStatus
from streamplane.mothership.store import (
    ClusterType,
    LogicalCluster,
    NotFoundError,
    PhysicalCluster,
    PhysicalClusterKind,
    Store,
)
from streamplane.tenancy import DEFAULT_CELL, tenant_prefix

log = logging.getLogger(__name__)


class ClusterNotReadyError(RuntimeError):
    """The cluster is not RUNNING, so there is no Kafka to talk to yet."""


@dataclass(frozen=True)
class KafkaTarget:
    admin: ClusterAdmin
    prefix: str  # "" for a dedicated cluster

    def kafka_name(self, name: str) -> str:
        return self.prefix + name


def admin_for(pc: PhysicalCluster, bootstrap: str) -> ClusterAdmin:
    su = pc.spec.super_user
    return ClusterAdmin(bootstrap, su.name, su.password.get_secret_value())


def target_for(store: Store, lc: LogicalCluster) -> KafkaTarget:
    if lc.physical_cluster_id is None or lc.bootstrap is None:
        raise ClusterNotReadyError(f"cluster {lc.name} has no Kafka cluster to talk to yet "
                                   f"({lc.status.value}); try again once it runs")
    pc = store.physical_clusters.get(lc.physical_cluster_id)
    if lc.type == ClusterType.DEDICATED:
        return KafkaTarget(admin_for(pc, lc.bootstrap), "")
    # a tenant's bootstrap is its gateway; the super-user talks to the brokers themselves
    return KafkaTarget(admin_for(pc, _brokers(pc)), tenant_prefix(lc.id))


def _brokers(pc: PhysicalCluster) -> str:
    bootstrap = pc.observed_status.bootstrap if pc.observed_status else None
    if bootstrap is None:
        raise ClusterNotReadyError(f"shared cluster {pc.id} has no bootstrap yet")
    return bootstrap


def serves_through_gateway(lc: LogicalCluster) -> bool:
    """Basic and standard clusters: clients use the gateway and API keys never reach Kafka."""
    return lc.type != ClusterType.DEDICATED


def clean_tenant(store: Store, lc: LogicalCluster, pc: PhysicalCluster) -> None:
    """Remove every topic, consumer group, user and ACL of a tenant from its shared
    physical cluster, then forget the tenant's principal."""
    prefix = tenant_prefix(lc.id)
    with admin_for(pc, _brokers(pc)) as admin:
        users = [key.id for key in store.api_keys.list(logical_cluster_id=lc.id, include_revoked=True)]
        with contextlib.suppress(NotFoundError):
            users.append(store.tenant_principals.get(lc.id).username)
        for user in users:  # API keys were Kafka users before the gateway fronted tenants
            # first, so the tenant's clients stop and leave its groups empty
            with contextlib.suppress(UserNotFoundError):
                admin.delete_scram_user(user)
            admin.revoke_client_access(user)
        for topic in admin.list_topics(prefix=prefix):
            admin.delete_topic(topic.name)
        # a group whose consumers have not timed out yet refuses: the next cycle retries
        admin.delete_groups(admin.list_groups(prefix=prefix))
    store.tenant_principals.delete(lc.id)


#: the gateway address of a shared physical cluster, None before its gateway listens
GatewayBootstrap = Callable[[str], str | None]


@dataclass
class TenantAccess:
    """Sets up and tears down what a basic/standard cluster is on its shared cluster."""

    store: Store
    gateway_bootstrap: GatewayBootstrap
    #: tenants whose user and ACLs were made (or checked) since this process started
    _granted: set[str] = field(default_factory=set)

    def provision(self, lc: LogicalCluster, pc: PhysicalCluster, status: ClusterStatus) -> str | None:
        """Make the tenant's Kafka user and its PREFIXED ACLs (again, harmlessly, after a
        restart); the address its clients use, or None while the gateway is not up yet."""
        if pc.kind != PhysicalClusterKind.SHARED:
            raise ValueError(f"{pc.id} is not a shared cluster")
        if lc.id not in self._granted:
            principal = self.store.tenant_principals.ensure(lc.id)
            with admin_for(pc, status.bootstrap or _brokers(pc)) as admin:
                admin.upsert_scram_user(principal.username, principal.password.get_secret_value())
                admin.grant_client_access(principal.username, tenant_prefix(lc.id))
                # the type's byte and request rates, enforced by the brokers on the principal
                admin.set_client_quotas(principal.username, tenant_quotas(
                    lc.type.value, brokers=sum(1 for b in pc.spec.brokers if b.cell == DEFAULT_CELL) or 1))
            self._granted.add(lc.id)
            log.info("cluster %s: Kafka user %s may use %s* on %s", lc.name, principal.username,
                     tenant_prefix(lc.id), pc.id)
        return self.gateway_bootstrap(pc.id)

    def clean(self, lc: LogicalCluster, pc: PhysicalCluster) -> None:
        clean_tenant(self.store, lc, pc)
        self._granted.discard(lc.id)
