"""One status for a physical cluster whose nodes run on several satellites.

Each satellite reports the nodes it runs and how the cluster looks from there; the cluster
is HEALTHY at a generation only when every one of its satellites says so at that generation.
The cluster-wide figures (quorum leader) are the coordinating satellite's (the PSC's own).
"""

from __future__ import annotations

from typing import Protocol

from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus


class StatusLookup(Protocol):
    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None: ...


#: when satellites disagree, the state shown is the first of these any of them reports
_WORST_FIRST = (ClusterState.FAILED, ClusterState.DEGRADED, ClusterState.STOPPING,
                ClusterState.STOPPED, ClusterState.STARTING, ClusterState.PENDING,
                ClusterState.DELETED, ClusterState.HEALTHY)


def cluster_status(statuses: StatusLookup, spec: PhysicalClusterSpec) -> ClusterStatus | None:
    """The cluster's status from what its satellites report; None when none reports."""
    sats = spec.satellites()
    if len(sats) <= 1:
        return statuses.get(sats[0], spec.id) if sats else None
    parts = {s: statuses.get(s, spec.id) for s in sats}
    return merge(spec.satellite, parts)


def merge(coordinator: str | None, parts: dict[str, ClusterStatus | None]) -> ClusterStatus | None:
    """One status from the reports of each satellite (None: it has not reported); the
    coordinating satellite's report gives the cluster-wide figures."""
    seen = {s: st for s, st in parts.items() if st is not None}
    if not seen:
        return None
    lead = seen.get(coordinator or "") or next(iter(seen.values()))
    missing = sorted(s for s, st in parts.items() if st is None)
    states = {st.status for st in seen.values()}
    state = next(s for s in _WORST_FIRST if s in states)
    if missing and state == ClusterState.HEALTHY:
        state = ClusterState.DEGRADED if lead.observed_generation else ClusterState.STARTING
    observed = [st.observed_generation for st in seen.values()]
    brokers = sorted((b for st in seen.values() for b in st.brokers), key=lambda b: b.id)
    controllers = sorted((c for st in seen.values() for c in st.controllers), key=lambda c: c.id)
    notes = [f"{s}: {st.message}" for s, st in sorted(seen.items()) if st.message]
    notes += [f"no report from satellite {s}" for s in missing]
    errors = [f"{s}: {st.last_error}" for s, st in sorted(seen.items()) if st.last_error]
    return lead.model_copy(update={
        "status": state,
        "generation": min(st.generation for st in seen.values()),
        "observed_generation": None if missing or None in observed else min(o for o in observed if o is not None),
        "bootstrap": ",".join(f"{b.host}:{b.port}" for b in brokers if b.port) or None,
        "brokers": brokers,
        "controllers": controllers,
        "under_replicated_partitions": _worst(st.under_replicated_partitions for st in seen.values()),
        "offline_partitions": _worst(st.offline_partitions for st in seen.values()),
        "message": "; ".join(notes),
        "last_error": "; ".join(errors) or None,
        "updated_at": min(st.updated_at for st in seen.values()),
    })


def _worst(values: object) -> int | None:
    known = [v for v in values if isinstance(v, int)]  # type: ignore[attr-defined]
    return max(known) if known else None


def reported_by_any(statuses: StatusLookup, spec: PhysicalClusterSpec) -> bool:
    """Whether any satellite of the cluster still reports it (a deletion is not done yet)."""
    return any(statuses.get(s, spec.id) is not None for s in spec.satellites())
