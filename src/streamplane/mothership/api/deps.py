"""What routes depend on: the collaborators of the app (:class:`ApiContext`), the admin
token check, and the small lookups most routes share."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from streamplane.loops.balancer.loop import BalancingService
from streamplane.models import api as s
from streamplane.models.satellite import SatelliteInfo
from streamplane.mothership.access import ClusterNotReadyError, KafkaTarget, target_for
from streamplane.mothership.api import views
from streamplane.mothership.api.errors import ApiError
from streamplane.mothership.balancer_source import Statuses
from streamplane.mothership.gateways import GatewaySupervisor
from streamplane.mothership.reconciler import Directory
from streamplane.mothership.scheduler import SchedulerSettings
from streamplane.mothership.store import (
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    OperationStatus,
    Store,
)


@dataclass(frozen=True)
class ApiContext:
    """Everything the routes use. ``changed`` is called (from a worker thread) after a
    request changed desired state, so the reconciler acts at once instead of at its next
    tick."""

    store: Store
    admin_token: str
    changed: Callable[[], None] | None = None
    balancing: BalancingService | None = None
    gateways: GatewaySupervisor | None = None
    #: what the satellites last reported (the control channel); the store's copy otherwise
    statuses: Statuses | None = None
    #: the satellites that announced themselves; None: no fleet to check requests against
    directory: Directory | None = None
    #: a satellite not heard from for this long does not count (the scheduler's rule)
    satellite_max_age_s: float = SchedulerSettings.satellite_max_age_s

    @property
    def tenant_protocol(self) -> str:
        """What clients of basic/standard clusters set as security.protocol."""
        return self.gateways.security_protocol if self.gateways is not None else "SASL_PLAINTEXT"

    def live_satellites(self) -> list[SatelliteInfo] | None:
        """The satellites new clusters may go to now; None without a directory."""
        if self.directory is None:
            return None
        return self.directory.live(self.satellite_max_age_s)

    def notify_changed(self) -> None:
        if self.changed is not None:
            self.changed()

    def cluster_out(self, lc: LogicalCluster) -> s.ClusterOut:
        return views.cluster_out(lc, self.tenant_protocol)

    def cluster(self, ref: str) -> LogicalCluster:
        """The live cluster with id or name ``ref``."""
        try:
            return self.store.logical_clusters.get(ref)
        except NotFoundError:
            try:
                return self.store.logical_clusters.get_by_name(ref)
            except NotFoundError:
                raise ApiError(404, "not_found", f"no cluster with id or name {ref!r}") from None

    def finished_op(self, kind: str, target: str, request: dict[str, Any]) -> s.OperationOut:
        """Record an operation the request itself completed."""
        op = self.store.operations.create(kind, target, request=request)
        return views.operation_out(self.store.operations.update(op.id, status=OperationStatus.SUCCEEDED))

    def kafka(self, lc: LogicalCluster) -> KafkaTarget:
        """Kafka admin access to a RUNNING cluster."""
        require_running(lc)
        return target_for(self.store, lc)


STATE_KEY = "streamplane"


def context(request: Request) -> ApiContext:
    ctx: ApiContext = getattr(request.app.state, STATE_KEY)
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]
#: the ``Idempotency-Key`` header: a retried request with the same key is applied once
IdempotencyKey = Annotated[str | None, Header()]
#: the ``If-Match`` header: the generation ETag the change expects
IfMatch = Annotated[str | None, Header()]


def authenticated(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer <token>'")


Auth = Depends(authenticated)


def require_running(lc: LogicalCluster) -> None:
    if lc.status != LogicalClusterStatus.RUNNING:
        raise ClusterNotReadyError(
            f"cluster {lc.name} is {lc.status.value}, not RUNNING; try again once it runs")


def expected_generation(if_match: str | None, body_generation: int | None = None) -> int | None:
    """The generation an ``If-Match`` ETag (or the body's ``generation``) expects."""
    if if_match is None or if_match.strip() == "*":
        return body_generation
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ApiError(400, "invalid_request", f"If-Match must be a generation ETag like \"3\", got {if_match!r}")
    return int(tag)
