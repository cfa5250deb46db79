"""What every repository shares: where its sessions come from, the clock, the SecretBox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Final, Literal, Protocol, TypeAlias

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from streamplane.mothership.store.engine import writer
from streamplane.mothership.store.secretbox import SecretBox

Clock: TypeAlias = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Unset(Enum):
    UNSET = "UNSET"


#: "leave this field as it is", where ``None`` is a value the field may be set to
UNSET: Final = _Unset.UNSET
Unset: TypeAlias = Literal[_Unset.UNSET]


class Sessions(Protocol):
    def read(self) -> AbstractContextManager[Session]: ...

    def write(self) -> AbstractContextManager[Session]: ...


class PerCallSessions:
    """Every repository call runs in its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._read_engine = engine
        self._write_engine = writer(engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session


class BoundSessions:
    """Every repository call joins one caller-owned transaction (Store.transaction())."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @contextmanager
    def read(self) -> Iterator[Session]:
        yield self._session

    @contextmanager
    def write(self) -> Iterator[Session]:
        yield self._session


@dataclass(frozen=True)
class RepoContext:
    sessions: Sessions
    clock: Clock
    secret_box: SecretBox
