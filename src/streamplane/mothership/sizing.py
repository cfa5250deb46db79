"""What a dedicated cluster's CKUs buy in brokers, which brokers a CKU change keeps or
drops, and what blocks a scale-in.

The one place for these rules: the API asks before it accepts a scale, the reconciler when
it grows or shrinks the PSC, the balancer's source when it marks brokers as leaving, and
the scheduler when it writes the resized spec. Brokers leave highest id first: the lowest
ids carry the controllers of a combined-mode cluster, and stay.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamplane.capacity import cku_capacity
from streamplane.kafka import is_internal_topic
from streamplane.loops.balancer.model import ClusterModel
from streamplane.models.psc import BrokerSpec

#: the share of the kept brokers' disks that the data may fill after a scale-in
CAPACITY_SHARE = 0.8


def broker_count(cku: int) -> int:
    """How many brokers ``cku`` CKUs buy."""
    return cku_capacity(cku).brokers


def kept_brokers(broker_ids: Iterable[int], cku: int) -> list[int]:
    """The brokers a cluster sized to ``cku`` keeps: the lowest ids."""
    return sorted(broker_ids)[:broker_count(cku)]


def leaving_brokers(broker_ids: Iterable[int], cku: int) -> list[int]:
    """The brokers a cluster sized to ``cku`` drops: the highest ids, none when it grows."""
    return sorted(broker_ids)[broker_count(cku):]


def kept_specs(brokers: Iterable[BrokerSpec], count: int) -> tuple[BrokerSpec, ...]:
    """The first ``count`` brokers by id: what a shrunken PSC keeps."""
    return tuple(sorted(brokers, key=lambda b: b.id)[:count])


def scale_in_problems(model: ClusterModel, broker_ids: Iterable[int], cku: int) -> list[str]:
    """Why the cluster seen as ``model`` cannot shrink to ``cku`` CKUs; empty when it can."""
    cap = cku_capacity(cku)
    keep = set(kept_brokers(broker_ids, cku))
    problems = []
    wide = sorted({p.topic: p.replication_factor for p in model.partitions
                   if p.replication_factor > cap.brokers}.items())
    if wide:
        problems.append("replication factor above the broker count: " + ", ".join(
            f"topic {t} has {rf} replicas" for t, rf in wide[:5]) + (" and more" if len(wide) > 5 else ""))
    user_partitions = sum(1 for p in model.partitions if not is_internal_topic(p.topic))
    if user_partitions > cap.partitions:
        problems.append(f"it has {user_partitions} partitions and {cku} CKU allow {cap.partitions}")
    data = sum(p.size_bytes * p.replication_factor for p in model.partitions)
    disks = [model.broker(b).capacity.disk_bytes for b in keep if b in model.broker_ids]
    room = sum(d for d in disks if d) * CAPACITY_SHARE
    if disks and all(disks) and data > room:
        problems.append(f"it holds {data / 2**30:.2f} GiB with replicas and {cap.brokers} brokers hold "
                        f"{room / 2**30:.2f} GiB at {CAPACITY_SHARE:.0%} of their disks")
    # what clients produce: each partition's bytes in once, not once per replica that copies it
    ingress = sum(p.bytes_in_per_s for p in model.partitions)
    if ingress > cap.ingress_mbps * 1e6:
        problems.append(f"it takes in {ingress / 1e6:.1f} MB/s and {cku} CKU allow {cap.ingress_mbps} MB/s")
    return problems
