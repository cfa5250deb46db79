"""One real system cluster (``streamplane up``) shared by the channel tests."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamplane.channel import ChannelConfig, ensure_topics
from streamplane.satellite.local_channel import channel_config_for_local

STREAMPLANE = str(Path(sys.executable).with_name("streamplane"))
UP_TIMEOUT_S = 240.0
DOWN_TIMEOUT_S = 200.0


def _streamplane(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STREAMPLANE, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def system_data_dir(tmp_path_factory: pytest.TempPathFactory,
                    request: pytest.FixtureRequest) -> Path:
    """The data dir of a running embedded deployment (satellite + system cluster)."""
    data_dir = tmp_path_factory.mktemp("channel-system")

    def down() -> None:
        done = _streamplane("down", "--data-dir", str(data_dir), timeout=DOWN_TIMEOUT_S)
        assert done.returncode == 0, f"streamplane down failed:\n{done.stdout}{done.stderr}"

    request.addfinalizer(down)  # registered first: even a failed `up` is taken down
    done = _streamplane("up", "--detach", "--data-dir", str(data_dir), timeout=UP_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"streamplane up failed:\n{done.stdout}{done.stderr}")
    return data_dir


@dataclass
class SystemControl:
    """Stops and starts the shared system cluster (and its satellite); ports stay the same."""

    data_dir: Path

    def down(self) -> None:
        self._run("down")

    def up(self) -> None:
        self._run("up", "--detach")

    def _run(self, *args: str) -> None:
        done = _streamplane(*args, "--data-dir", str(self.data_dir), timeout=UP_TIMEOUT_S)
        assert done.returncode == 0, f"streamplane {args[0]} failed:\n{done.stdout}{done.stderr}"


@pytest.fixture
def system_control(system_data_dir: Path) -> Iterator[SystemControl]:
    control = SystemControl(system_data_dir)
    yield control
    control.up()  # whatever the test did, leave the system cluster running for the next one


@pytest.fixture(scope="module")
def system_config(system_data_dir: Path) -> ChannelConfig:
    """The super-user's login to the system cluster, without encryption, default topics."""
    return channel_config_for_local(system_data_dir)


@pytest.fixture
def channel(system_config: ChannelConfig) -> ChannelConfig:
    """Fresh, encrypted, compacted topics of their own for one test."""
    tag = uuid.uuid4().hex[:10]
    config = system_config.model_copy(update={
        "desired_topic": f"desired-{tag}",
        "status_topic": f"status-{tag}",
        "encryption_key": ChannelConfig.new_encryption_key(),
    })
    ensure_topics(config)
    return config

