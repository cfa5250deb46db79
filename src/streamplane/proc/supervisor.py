"""One restart policy for every process Streamplane keeps running (Kafka nodes, gateways).

A process that dies is started again after a delay that doubles with each death in a row,
up to a ceiling; one that stayed up long enough has recovered, and its next death is
waited on for the first delay again. The caller owns the process and the clock: it says
when the process started, is seen running, or exited, and asks whether a start is due.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """``first`` seconds, doubling after each death in a row up to ``maximum``."""

    first: float
    maximum: float = 30.0
    #: a process up this long has recovered: the delay starts over at ``first``
    stable_after: float = 60.0


@dataclass
class Supervisor:
    """The restart bookkeeping of one process: when it may start next, how often it died,
    how it last exited, and whether it is being stopped on purpose (then it stays down
    until ``resume``)."""

    policy: Backoff
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: float = 0.0
    next_start_at: float = 0.0
    stopping: bool = False
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.policy.first

    def started(self, at: float) -> None:
        self.started_at = at

    def running(self, now: float) -> None:
        """The process was seen alive: once it has been up long enough, forget its deaths."""
        if now - self.started_at > self.policy.stable_after:
            self.delay = self.policy.first

    def exited(self, now: float, code: int | None) -> float:
        """The process died on its own: count it; returns the wait before it is started again."""
        waited = self.delay
        self.last_exit_code = code
        self.restarts += 1
        self.next_start_at = now + waited
        self.delay = min(self.delay * 2, self.policy.maximum)
        return waited

    def due(self, now: float) -> bool:
        """Whether a process that is not running should be started now."""
        return not self.stopping and now >= self.next_start_at

    def resume(self) -> None:
        """After a deliberate stop: may be started again at once."""
        self.stopping = False
        self.next_start_at = 0.0
