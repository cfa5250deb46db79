"""Where a satellite gets its desired PSCs from and where it reports status.

The seam the mothership plugs into: today a directory of JSON files (and an in-memory
source for embedding); the Kafka-topic channel implements the same two classes.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from streamplane.files import write_json, write_private
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterStatus


@dataclass
class DesiredSnapshot:
    """The desired PSCs, plus the ids whose desired state could not be read.

    A cluster whose entry is unreadable is left exactly as it is: only a cluster that is
    absent from a *complete* snapshot is removed.
    """

    specs: dict[str, PhysicalClusterSpec] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    complete: bool = True


class DesiredStateSource(abc.ABC):
    @abc.abstractmethod
    async def snapshot(self) -> DesiredSnapshot: ...


class StatusSink(abc.ABC):
    @abc.abstractmethod
    async def publish(self, status: ClusterStatus) -> None: ...

    @abc.abstractmethod
    async def forget(self, cluster_id: str) -> None: ...


def describe_validation_error(exc: ValidationError) -> str:
    """One readable line per problem, e.g. ``brokers: a cluster needs at least one broker``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def parse_psc(data: object) -> PhysicalClusterSpec:
    """Validate a PSC; raises ValueError with a readable message."""
    try:
        return PhysicalClusterSpec.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


class DirectorySource(DesiredStateSource):
    """``<dir>/<cluster id>.json``, one PSC per file, written atomically by ``submit``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def snapshot(self) -> DesiredSnapshot:
        snap = DesiredSnapshot()
        if not self.directory.exists():
            return snap
        for path in sorted(self.directory.glob("*.json")):
            cluster_id = path.stem
            try:
                psc = parse_psc(json.loads(path.read_text()))
            except (ValueError, OSError) as exc:
                snap.errors[cluster_id] = f"{path.name}: {exc}"
                continue
            if psc.id != cluster_id:
                snap.errors[cluster_id] = f"{path.name}: holds cluster {psc.id!r}, not {cluster_id!r}"
                continue
            snap.specs[cluster_id] = psc
        return snap

    def submit(self, psc: PhysicalClusterSpec) -> Path:
        path = self.directory / f"{psc.id}.json"
        write_private(path, json.dumps(psc.to_wire(), indent=1))
        return path

    def withdraw(self, cluster_id: str) -> bool:
        path = self.directory / f"{cluster_id}.json"
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def get(self, cluster_id: str) -> PhysicalClusterSpec | None:
        path = self.directory / f"{cluster_id}.json"
        if not path.exists():
            return None
        return parse_psc(json.loads(path.read_text()))


class InMemorySource(DesiredStateSource):
    """For embedding a satellite in-process (tests, benchmarks)."""

    def __init__(self) -> None:
        self.specs: dict[str, PhysicalClusterSpec] = {}

    async def snapshot(self) -> DesiredSnapshot:
        return DesiredSnapshot(specs=dict(self.specs))


class FileStatusSink(StatusSink):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def publish(self, status: ClusterStatus) -> None:
        write_json(self.directory / f"{status.id}.json", status.model_dump(mode="json"))

    async def forget(self, cluster_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / f"{cluster_id}.json")


def read_statuses(directory: Path) -> list[ClusterStatus]:
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            out.append(ClusterStatus.model_validate_json(path.read_text()))
        except (ValidationError, OSError):
            continue
    return out


class MergedSource(DesiredStateSource):
    """Several sources as one: e.g. local files (the system cluster) plus the Kafka channel.

    The merged snapshot is complete only when every part is; a cluster id desired by two
    sources is an error, so neither copy wins by accident.
    """

    def __init__(self, *sources: DesiredStateSource) -> None:
        self.sources = sources

    async def snapshot(self) -> DesiredSnapshot:
        merged = DesiredSnapshot()
        for source in self.sources:
            snap = await source.snapshot()
            merged.complete = merged.complete and snap.complete
            merged.errors.update(snap.errors)
            for cluster_id, psc in snap.specs.items():
                if cluster_id in merged.specs:
                    merged.errors[cluster_id] = f"cluster {cluster_id} is desired by two sources"
                else:
                    merged.specs[cluster_id] = psc
        for cluster_id in merged.errors:
            merged.specs.pop(cluster_id, None)
        return merged


class FanoutSink(StatusSink):
    """Reports to every sink: the local status files and, when connected, the channel."""

    def __init__(self, *sinks: StatusSink) -> None:
        self.sinks = sinks

    async def publish(self, status: ClusterStatus) -> None:
        for sink in self.sinks:
            await sink.publish(status)

    async def forget(self, cluster_id: str) -> None:
        for sink in self.sinks:
            await sink.forget(cluster_id)
