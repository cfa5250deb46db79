"""What the analyzer hands the executor: a plan of partition moves, each explained."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PartitionMove(BaseModel):
    """Change one partition's replica list (KIP-455) and, optionally, who should lead it.

    ``replicas[0]`` is the preferred leader, as in Kafka; after the move a preferred
    leader election makes it the leader.
    """

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int = Field(ge=0)
    old_replicas: tuple[int, ...]
    replicas: tuple[int, ...]
    #: bytes that must be copied: the partition's size times the replicas that are new
    bytes_to_move: int = Field(default=0, ge=0)
    reason: str = Field(default="", description="which goal asked for it, in a sentence")

    @property
    def added(self) -> tuple[int, ...]:
        return tuple(b for b in self.replicas if b not in self.old_replicas)

    @property
    def removed(self) -> tuple[int, ...]:
        return tuple(b for b in self.old_replicas if b not in self.replicas)

    @property
    def leader_only(self) -> bool:
        """Same replica set, different order: only leadership moves."""
        return set(self.replicas) == set(self.old_replicas) and self.replicas != self.old_replicas


class Plan(BaseModel):
    """An ordered list of moves for one physical cluster."""

    model_config = ConfigDict(frozen=True)

    cluster_id: str
    moves: tuple[PartitionMove, ...] = ()
    #: goal name -> imbalance before/after, for the dry run and for tests
    before: dict[str, float] = Field(default_factory=dict)
    after: dict[str, float] = Field(default_factory=dict)
    explanation: str = ""
    #: hard goals the plan could not meet: goal name -> why, in a sentence
    unmet: dict[str, str] = Field(default_factory=dict)

    @property
    def bytes_to_move(self) -> int:
        return sum(m.bytes_to_move for m in self.moves)
