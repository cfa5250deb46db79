"""Short random identifiers, prefixed by what they name."""

from __future__ import annotations

import secrets
import string

_LOWER = string.ascii_lowercase + string.digits
_UPPER = string.ascii_uppercase + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def logical_cluster_id() -> str:
    return f"lkc-{_random(_LOWER, 6)}"


def physical_cluster_id() -> str:
    return f"pkc-{_random(_LOWER, 6)}"


def operation_id() -> str:
    return f"op-{_random(_LOWER, 12)}"


def api_key_id() -> str:
    """16 characters, like the public half of a Confluent Cloud API key."""
    return f"AK{_random(_UPPER, 14)}"


def api_key_secret() -> str:
    """About 384 bits of randomness; URL- and SASL-safe."""
    return secrets.token_urlsafe(48)
