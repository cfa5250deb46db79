"""How a mothership or a satellite reaches the system cluster: one small private file."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from streamplane.channel.source import describe_validation_error
from streamplane.files import write_private
from streamplane.kafka.settings import sasl_config

DESIRED_TOPIC = "desired"
STATUS_TOPIC = "status"
SATELLITES_TOPIC = "satellites"
#: the system cluster's clients log in on the EXTERNAL (client) listener
SASL_MECHANISM = "SCRAM-SHA-512"
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class ChannelError(RuntimeError):
    """The control channel cannot do what was asked; the message says what and why."""


class ChannelConfig(BaseModel):
    """Where the system cluster is, who to log in as, and the key that seals PSCs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap: str = Field(min_length=1, description="host:port[,host:port] of the client listener")
    username: str = Field(min_length=1)
    password: SecretStr
    encryption_key: SecretStr | None = Field(
        default=None, description="Fernet key that encrypts PSCs on the desired topic")
    desired_topic: str = DESIRED_TOPIC
    status_topic: str = STATUS_TOPIC
    satellites_topic: str = SATELLITES_TOPIC

    @field_validator("encryption_key")
    @classmethod
    def _fernet_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            try:
                Fernet(v.get_secret_value())
            except ValueError:
                raise ValueError(
                    "encryption_key must be a Fernet key (32 url-safe base64-encoded bytes); "
                    "make one with ChannelConfig.new_encryption_key()"
                ) from None
        return v

    @field_validator("desired_topic", "status_topic", "satellites_topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not _TOPIC.match(v) or v in {".", ".."}:
            raise ValueError(f"{v!r} is not a Kafka topic name (letters, digits, '.', '_', '-')")
        return v

    @field_serializer("password", "encryption_key", when_used="json")
    def _reveal_for_file(self, v: SecretStr | None, info: Any) -> str | None:
        if v is None:
            return None
        ctx = info.context or {}
        return v.get_secret_value() if ctx.get("reveal_secrets") else str(v)

    @staticmethod
    def new_encryption_key() -> SecretStr:
        return SecretStr(Fernet.generate_key().decode())

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every channel client (SASL_PLAINTEXT, SCRAM-SHA-512)."""
        return sasl_config(self.bootstrap, SASL_MECHANISM, self.username,
                           self.password.get_secret_value())

    def save(self, path: Path) -> None:
        """Write the config, secrets included, readable only by its owner (mode 0600)."""
        data = self.model_dump(mode="json", context={"reveal_secrets": True}, exclude_none=True)
        write_private(path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> ChannelConfig:
        try:
            mode = os.stat(path).st_mode
            text = path.read_text()
        except FileNotFoundError:
            raise ChannelError(f"no channel config at {path}; write one with "
                               "ChannelConfig.save or point to the right file") from None
        except OSError as exc:
            raise ChannelError(f"cannot read the channel config {path}: {exc}") from None
        if stat.S_IMODE(mode) & 0o077:
            raise ChannelError(f"the channel config {path} holds secrets but others may read it "
                               f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ChannelError(f"the channel config {path} is invalid: "
                               f"{describe_validation_error(exc)}") from None
