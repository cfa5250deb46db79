"""Default locations on disk, derived from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where downloaded artifacts live (outside any repository)."""
    base = os.environ.get("STREAMPLANE_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "streamplane"


def default_data_dir() -> Path:
    """The embedded default's data directory (``streamplane up`` without ``--data-dir``)."""
    env = os.environ.get("STREAMPLANE_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "streamplane"
