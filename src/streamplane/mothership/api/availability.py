"""What the API refuses when a new cluster asks for more zones than the fleet spans."""

from __future__ import annotations

from streamplane.models import api as s
from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.errors import ApiError


def check_availability(ctx: ApiContext, body: s.ClusterCreate) -> None:
    """Refuse an explicit multi-zone cluster unless connected satellites span its zones.

    Only ``availability`` is checked: ``zones: 3`` on a single host keeps meaning rack
    labels there, as it did before fleets had zones. Without a directory (a test's app)
    there is no fleet to check against."""
    if body.availability != "multi-zone":
        return
    live = ctx.live_satellites()
    if live is None:
        return
    zones = sorted({sat.zone for sat in live})
    if len(zones) >= s.MULTI_ZONE:
        return
    found = (f"they are in {len(zones)} ({', '.join(zones)})" if zones
             else "no satellite is connected")
    hint = (f" (with one satellite, zones {s.MULTI_ZONE} only labels racks on its host)"
            if len(live) == 1 else "")
    raise ApiError(422, "insufficient_capacity",
                   f"cluster {body.name} cannot be multi-zone: that needs connected satellites in "
                   f"{s.MULTI_ZONE} zones, and {found}; connect satellites in {s.MULTI_ZONE - len(zones)} "
                   f"more zone(s), or create it single-zone{hint}")
