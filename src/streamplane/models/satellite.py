"""What a satellite says about itself, so the scheduler can place clusters on it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SatelliteInfo(BaseModel):
    name: str
    zone: str
    host: str = Field(default="127.0.0.1", description="the address its nodes bind and advertise")
    max_brokers: int = Field(ge=0, description="how many broker processes this host may run")
    memory_mb: int = Field(ge=0)
    clusters: list[str] = Field(default_factory=list, description="physical clusters it runs")
    brokers: int = Field(default=0, description="broker processes it runs now")
    updated_at: float = 0.0
