"""The CLI's HTTP client speaks the wire schemas only: importing it loads no store code."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "fastapi", "streamplane.mothership")


def test_the_api_client_imports_no_store_or_server_code() -> None:
    probe = ("import sys, streamplane.cli.api_client\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"streamplane.cli.api_client loaded {res.stdout.strip()}"
    assert "sqlalchemy" not in res.stdout
