"""Files that must never be seen half-written: private (owner-only) text and JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_private(path: Path, text: str) -> None:
    """Atomically write a file readable only by its owner (it may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_private(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
