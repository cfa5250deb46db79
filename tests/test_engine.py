"""Resolving Apache Kafka: the Maven cache, KAFKA_HOME, and clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from streamplane.engine.distribution import EngineError, EngineResolver
from streamplane.satellite.kafka.node import java_executable
from streamplane.versions import DEFAULT_KAFKA_VERSION, UPGRADE_FROM_KAFKA_VERSION


def _path_without(tmp_path: Path, *tools: str) -> str:
    """A PATH holding python3 and java but none of ``tools``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("java", "python3"):
        if tool not in tools and shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    return str(bin_dir)


def test_both_supported_lines_resolve_and_a_second_resolve_needs_no_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = EngineResolver()
    for version in (DEFAULT_KAFKA_VERSION, UPGRADE_FROM_KAFKA_VERSION):
        dist = resolver.resolve(version)
        assert (dist.libs_dir / f"kafka_2.13-{version}.jar").exists()
        assert dist.jmx_agent.name.startswith("jmx_prometheus_javaagent-")
    monkeypatch.setenv("PATH", _path_without(tmp_path, "mvn"))
    again = EngineResolver().resolve(DEFAULT_KAFKA_VERSION)
    assert again.libs_dir == resolver.resolve(DEFAULT_KAFKA_VERSION).libs_dir


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without(tmp_path, "mvn"))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    with pytest.raises(EngineError) as err:
        EngineResolver(cache_dir=tmp_path / "empty-cache").resolve(DEFAULT_KAFKA_VERSION)
    assert "'mvn' was not found" in str(err.value)
    assert "apt-get install maven" in str(err.value)


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without(tmp_path, "java", "mvn"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError) as err:
        EngineResolver(cache_dir=tmp_path / "empty-cache").resolve(DEFAULT_KAFKA_VERSION)
    assert "'java' was not found" in str(err.value) and "Java 17" in str(err.value)


def test_an_unknown_version_names_the_supported_ones() -> None:
    with pytest.raises(ValueError) as err:
        EngineResolver().resolve("9.9.9")
    assert DEFAULT_KAFKA_VERSION in str(err.value) and UPGRADE_FROM_KAFKA_VERSION in str(err.value)


def test_kafka_home_is_used_instead_of_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = EngineResolver().resolve(DEFAULT_KAFKA_VERSION)
    home = tmp_path / f"kafka_2.13-{DEFAULT_KAFKA_VERSION}"
    (home / "libs").mkdir(parents=True)
    for jar in cached.libs_dir.glob("*.jar"):
        os.link(jar, home / "libs" / jar.name)
    monkeypatch.setenv("KAFKA_HOME", str(home))
    dist = EngineResolver().resolve(DEFAULT_KAFKA_VERSION)
    assert dist.source == "KAFKA_HOME" and dist.libs_dir == home / "libs"
    out = subprocess.run(
        [java_executable(), "-cp", dist.classpath, "kafka.tools.StorageTool", "random-uuid"],
        capture_output=True, text=True, timeout=60, check=True)
    assert len(out.stdout.strip()) == 22
    # a KAFKA_HOME of another version does not stand in for this one
    other = EngineResolver().resolve(UPGRADE_FROM_KAFKA_VERSION)
    assert other.source == "maven"
