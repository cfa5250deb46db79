"""The FastAPI application: the routers of every resource over one :class:`ApiContext`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import APIRouter, FastAPI

from streamplane.loops.balancer.loop import BalancingService
from streamplane.models import api as s
from streamplane.mothership.api.deps import STATE_KEY, ApiContext
from streamplane.mothership.api.errors import install_error_handlers
from streamplane.mothership.api.routes import api_keys, balance, cells, clusters, gateways, operations, topics
from streamplane.mothership.balancer_source import Statuses
from streamplane.mothership.gateways import GatewaySupervisor
from streamplane.mothership.reconciler import Directory
from streamplane.mothership.scheduler import SchedulerSettings
from streamplane.mothership.store import Store

ROUTERS = (gateways.router, clusters.router, operations.router, balance.router, cells.router,
           api_keys.router, topics.router)


def create_app(store: Store, admin_token: str, changed: Callable[[], None] | None = None,
               balancing: BalancingService | None = None,
               gateways: GatewaySupervisor | None = None, statuses: Statuses | None = None,
               directory: Directory | None = None,
               satellite_max_age_s: float = SchedulerSettings.satellite_max_age_s) -> FastAPI:
    """``changed`` is called (from a worker thread) after a request changed desired state,
    so the reconciler acts at once instead of at its next tick. With a ``directory`` of
    satellites, a cluster the fleet cannot place as asked (multi-zone in fewer zones) is
    refused at once."""
    return build_app(ApiContext(store, admin_token, changed, balancing, gateways, statuses,
                                directory, satellite_max_age_s))


def build_app(ctx: ApiContext, routers: Iterable[APIRouter] = ROUTERS) -> FastAPI:
    """The app over ``ctx``; a test may serve only some of the routers."""
    app = FastAPI(title="Streamplane", version="1", description="Managed Apache Kafka.",
                  responses={401: {"model": s.ErrorOut}})
    setattr(app.state, STATE_KEY, ctx)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in routers:
        app.include_router(router)
    return app
