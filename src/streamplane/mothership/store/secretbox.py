"""Encryption at rest for secrets the store must be able to read back (PSC passwords)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from streamplane.mothership.store.errors import SecretDecryptionError

KEY_FILE_NAME = "store.key"


class SecretBox:
    """Fernet encryption with keys from a key file.

    The key file holds one Fernet key per line: the first encrypts, all of them decrypt,
    so a key can be rotated by putting a new key on top and re-saving the rows.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh key that lives only in memory (tests, throwaway stores)."""
        return cls([Fernet.generate_key()])

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """Read the key file, creating it (mode 0600, one fresh key) if it is missing."""
        if not path.exists():
            _create_key_file(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"key file {path} is readable by other users (mode {mode:o}); "
                f"run 'chmod 600 {path}'"
            )
        keys = [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]
        if not keys:
            raise ValueError(f"key file {path} holds no key; delete it to get a new one")
        return cls(keys)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SecretBox:
        return cls.from_key_file(data_dir / KEY_FILE_NAME)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError):
            raise SecretDecryptionError(
                "a secret in the state store cannot be decrypted with the current key file; "
                "restore the key file the store was written with"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"


def _create_key_file(path: Path) -> None:
    """Write the key to a private temp file, then link it into place: a concurrent
    creator either wins the link or reads a complete file, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
