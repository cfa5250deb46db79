"""Admin access to the Kafka cluster behind a logical cluster, as its super-user.

A dedicated cluster is the whole physical cluster; a basic or standard cluster is the set
of resources under its prefix on a shared one, which is how its topics, users and ACLs are
found, created and cleaned up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streamplane.mothership.kafka_admin import AdminError, ClusterAdmin
from streamplane.mothership.reconciler import tenant_prefix
from streamplane.mothership.store import (
    ClusterType,
    LogicalCluster,
    PhysicalCluster,
    Store,
)

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
    prefix = "" if lc.type == ClusterType.DEDICATED else tenant_prefix(lc.id)
    return KafkaTarget(admin_for(pc, lc.bootstrap), prefix)


def clean_tenant(store: Store, lc: LogicalCluster, pc: PhysicalCluster) -> None:
    """Remove every topic, user and ACL of a tenant from its shared physical cluster."""
    bootstrap = pc.observed_status.bootstrap if pc.observed_status else None
    if bootstrap is None:
        raise ClusterNotReadyError(f"shared cluster {pc.id} has no bootstrap yet")
    prefix = tenant_prefix(lc.id)
    with admin_for(pc, bootstrap) as admin:
        for topic in admin.list_topics(prefix=prefix):
            admin.delete_topic(topic.name)
        for key in store.api_keys.list(logical_cluster_id=lc.id, include_revoked=True):
            user = key.id  # API keys are globally unique, so they name their SCRAM user as is
            try:
                admin.delete_scram_user(user)
            except AdminError as exc:
                log.debug("user %s: %s", user, exc)
            admin.revoke_client_access(user)
