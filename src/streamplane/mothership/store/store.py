"""The mothership's state store: one object, constructed from a SQLAlchemy URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from streamplane.mothership.store import migrate as migrations
from streamplane.mothership.store._base import (
    BoundSessions,
    Clock,
    PerCallSessions,
    RepoContext,
    utcnow,
)
from streamplane.mothership.store.api_keys import ApiKeys
from streamplane.mothership.store.engine import make_engine, writer
from streamplane.mothership.store.idempotency import IdempotencyKeys
from streamplane.mothership.store.logical_clusters import LogicalClusters
from streamplane.mothership.store.operations import Operations
from streamplane.mothership.store.physical_clusters import PhysicalClusters
from streamplane.mothership.store.satellites import Satellites
from streamplane.mothership.store.secretbox import SecretBox
from streamplane.mothership.store.tenant_principals import TenantPrincipals

DB_FILE_NAME = "mothership.db"


class Repositories:
    """One repository per table. On a Store each call is its own short transaction; in
    ``Store.transaction()`` all calls share one."""

    def __init__(self, ctx: RepoContext) -> None:
        self.logical_clusters = LogicalClusters(ctx)
        self.physical_clusters = PhysicalClusters(ctx)
        self.satellites = Satellites(ctx)
        self.api_keys = ApiKeys(ctx)
        self.operations = Operations(ctx)
        self.idempotency = IdempotencyKeys(ctx)
        self.tenant_principals = TenantPrincipals(ctx)


class Store(Repositories):
    """State store on SQLite (``sqlite:///PATH``) or PostgreSQL
    (``postgresql+psycopg://USER@HOST:PORT/DB``). Call migrate() before first use."""

    def __init__(
        self,
        url: str | URL,
        *,
        secret_box: SecretBox,
        clock: Clock = utcnow,
        echo: bool = False,
    ) -> None:
        self._url = make_url(url)
        self._engine = make_engine(self._url, echo=echo)
        self._secret_box = secret_box
        self._clock = clock
        super().__init__(RepoContext(PerCallSessions(self._engine), clock, secret_box))

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, url: str | URL | None = None) -> Store:
        """The embedded default: SQLite in ``data_dir`` unless ``url`` says otherwise, and
        the key file for secrets at rest in ``data_dir`` either way."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            url or f"sqlite:///{data_dir / DB_FILE_NAME}",
            secret_box=SecretBox.in_data_dir(data_dir),
        )

    @property
    def url(self) -> str:
        """The URL with any password masked, for logs."""
        return self._url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    def migrate(self) -> str:
        """Upgrade the schema to the newest revision (a no-op if it is there); returns it."""
        return migrations.upgrade(self._engine)

    def schema_revision(self) -> str | None:
        """The revision the database is at; None before the first migrate()."""
        return migrations.current_revision(self._engine)

    @contextmanager
    def transaction(self) -> Iterator[Repositories]:
        """Several changes that must happen together or not at all, e.g. a cluster, its
        operation and the idempotency key that asked for them. Commits when the block
        ends; an exception rolls everything back."""
        with Session(writer(self._engine), expire_on_commit=False) as session, session.begin():
            yield Repositories(RepoContext(BoundSessions(session), self._clock, self._secret_box))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
