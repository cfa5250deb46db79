"""What the store raises. Each error says what was wrong, so the API can pass it on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class NotFoundError(StoreError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key


class AlreadyExistsError(StoreError):
    def __init__(self, kind: str, field: str, value: str) -> None:
        super().__init__(f"a {kind} with {field} {value!r} already exists; choose another {field}")
        self.kind = kind
        self.field = field
        self.value = value


class ConflictError(StoreError):
    """The row changed since the caller read it (stale generation), or its state forbids
    the change. Re-read the resource and retry."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        key: str,
        expected_generation: int | None = None,
        current_generation: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key
        self.expected_generation = expected_generation
        self.current_generation = current_generation

    @classmethod
    def stale(cls, kind: str, key: str, expected: int, current: int) -> ConflictError:
        return cls(
            f"{kind} {key!r} is at generation {current}, not {expected}: it was changed "
            "by someone else; read it again and retry",
            kind=kind,
            key=key,
            expected_generation=expected,
            current_generation=current,
        )


class IdempotencyKeyReusedError(StoreError):
    """An idempotency key came back with a different request body."""

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request "
            f"on {scope}; use a new key for a new request"
        )
        self.scope = scope
        self.key = key


class SecretDecryptionError(StoreError):
    """A value encrypted at rest cannot be decrypted with the configured key file."""
