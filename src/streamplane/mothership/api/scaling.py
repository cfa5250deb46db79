"""What the API refuses when a dedicated cluster is asked to change its CKUs."""

from __future__ import annotations

from streamplane.capacity import cku_capacity
from streamplane.loops.balancer.model import Resource
from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.errors import ApiError
from streamplane.mothership.api.load import read_model_from_worker
from streamplane.mothership.store import ClusterType, LogicalCluster, LogicalClusterStatus

#: a scale-in must leave the data under this share of the remaining brokers' disks
CAPACITY_SHARE = 0.8


def check_scale(ctx: ApiContext, lc: LogicalCluster, cku: int) -> None:
    """Refuse a CKU change that cannot be done, saying why."""
    if lc.type != ClusterType.DEDICATED or lc.cku is None:
        raise ApiError(422, "invalid_request", f"cluster {lc.name} is a {lc.type.value} cluster: it has "
                       "no CKUs to scale; only dedicated clusters are sized in CKUs")
    if lc.status != LogicalClusterStatus.RUNNING:
        raise ApiError(409, "cluster_not_ready", f"cluster {lc.name} is {lc.status.value}; it can be "
                       "scaled once it is RUNNING")
    open_scale = [op for op in ctx.store.operations.list(target_id=lc.id, limit=20)
                  if op.kind == "scale_cluster" and not op.status.finished]
    if open_scale:
        raise ApiError(409, "scale_in_progress", f"cluster {lc.name} is already scaling to {lc.cku} CKU "
                       f"(operation {open_scale[0].id}); wait for it to finish")
    if cku < lc.cku:
        problems = scale_down_problems(ctx, lc, cku)
        if problems:
            raise ApiError(422, "insufficient_capacity", f"cluster {lc.name} cannot shrink to {cku} CKU "
                           f"({cku_capacity(cku).brokers} brokers): " + "; ".join(problems))


def scale_down_problems(ctx: ApiContext, lc: LogicalCluster, cku: int) -> list[str]:
    cap = cku_capacity(cku)
    pc, model = read_model_from_worker(ctx, lc, 0.0)
    keep = set(sorted(b.id for b in pc.spec.brokers)[:cap.brokers])
    problems = []
    wide = sorted({p.topic: p.replication_factor for p in model.partitions
                   if p.replication_factor > cap.brokers}.items())
    if wide:
        problems.append("replication factor above the broker count: " + ", ".join(
            f"topic {t} has {rf} replicas" for t, rf in wide[:5]) + (" and more" if len(wide) > 5 else ""))
    user_partitions = sum(1 for p in model.partitions if not p.topic.startswith("__"))
    if user_partitions > cap.partitions:
        problems.append(f"it has {user_partitions} partitions and {cku} CKU allow {cap.partitions}")
    data = sum(p.size_bytes * p.replication_factor for p in model.partitions)
    disks = [model.broker(b).capacity.disk_bytes for b in keep if b in model.broker_ids]
    room = sum(d for d in disks if d) * CAPACITY_SHARE
    if disks and all(disks) and data > room:
        problems.append(f"it holds {data / 2**30:.2f} GiB with replicas and {cap.brokers} brokers hold "
                        f"{room / 2**30:.2f} GiB at {CAPACITY_SHARE:.0%} of their disks")
    ingress = model.total(Resource.NW_IN)
    if ingress > cap.ingress_mbps * 1e6:
        problems.append(f"it takes in {ingress / 1e6:.1f} MB/s and {cku} CKU allow {cap.ingress_mbps} MB/s")
    return problems
