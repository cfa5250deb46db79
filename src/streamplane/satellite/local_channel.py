"""A channel config for the embedded deployment that ``streamplane up`` runs: its satellite's
data dir holds the system cluster's spec and status, so the channel's address and login are
read from there."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.channel.source import DirectorySource
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.satellite.layout import SatelliteLayout
from streamplane.tenancy import SYSTEM_CLUSTER_ID


def channel_config_for_local(data_dir: Path,
                             encryption_key: SecretStr | None = None) -> ChannelConfig:
    """Log in to the local system cluster as its super-user, on its client listener.

    The password comes from the system PSC (``<data_dir>/desired/system.json``), the
    bootstrap from the system cluster's status (``<data_dir>/status/system.json``).
    """
    layout = SatelliteLayout(data_dir)
    hint = f"start it with: streamplane up --data-dir {data_dir}"
    try:
        psc = DirectorySource(layout.desired_dir).get(SYSTEM_CLUSTER_ID)
    except (OSError, ValueError) as exc:
        raise ChannelError(f"the system cluster's spec in {layout.desired_dir} is unreadable: "
                           f"{exc}") from None
    if psc is None:
        raise ChannelError(f"{data_dir} has no system cluster; {hint}")
    status_file = layout.status_dir / f"{SYSTEM_CLUSTER_ID}.json"
    try:
        status = ClusterStatus.model_validate_json(status_file.read_text())
    except FileNotFoundError:
        raise ChannelError(f"the system cluster in {data_dir} has never run; {hint}") from None
    except (OSError, ValueError) as exc:
        raise ChannelError(f"cannot read {status_file}: {exc}") from None
    if status.bootstrap is None or status.status in (ClusterState.STOPPED, ClusterState.DELETED):
        raise ChannelError(f"the system cluster in {data_dir} is {status.status}; {hint}")
    return ChannelConfig(
        bootstrap=status.bootstrap,
        username=psc.super_user.name,
        password=psc.super_user.password,
        encryption_key=encryption_key,
    )

