"""``/v1/gateways``: the gateways in front of the shared clusters and their TLS."""

from __future__ import annotations

from fastapi import APIRouter

from streamplane.models import api as s
from streamplane.mothership.api.deps import Auth, Ctx
from streamplane.mothership.api.errors import ApiError

router = APIRouter(prefix="/v1", dependencies=[Auth])


@router.get("/gateways")
def list_gateways(ctx: Ctx) -> list[s.GatewayOut]:
    """The gateways in front of the shared clusters, and the certificate each serves."""
    if ctx.gateways is None:
        return []
    return [s.GatewayOut.model_validate(g) for g in ctx.gateways.certificates()]


@router.post("/gateways/reload-tls", status_code=202, responses={409: {"model": s.ErrorOut}})
def reload_gateway_tls(ctx: Ctx) -> s.GatewayReloadOut:
    """Make every gateway load its certificate files now: new connections get the new
    certificate, open ones keep theirs. ``GET /v1/gateways`` shows what each serves."""
    if ctx.gateways is None or ctx.gateways.tls is None:
        raise ApiError(409, "tls_not_enabled",
                       "the gateways do not serve TLS: run the mothership with "
                       "--gateway-tls-cert and --gateway-tls-key")
    return s.GatewayReloadOut(asked=ctx.gateways.reload_tls())
