"""The auth store backends under test: SQLite in tmp_path and PostgreSQL in a schema of its own per test.

PostgreSQL is `SWITCHBOARD_TEST_POSTGRES_URL` (default postgresql://postgres@127.0.0.1:5432/test). Without one
the PostgreSQL tests are skipped on a developer's machine and fail in CI (CI=true): that backend is never left
untested there. Each test gets a fresh schema (`?search_path=` on the URL its stores open), dropped after it.

A test module takes the `backend` fixture (both backends) or `postgres_url` (PostgreSQL alone) by importing it:
`from .store_backends import backend_fixture  # noqa: F401`.
"""

import asyncio
import dataclasses
import os
import secrets
import sqlite3
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard_auth.postgres_store import PostgresKeyStore, PostgresLedger, display_url
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_auth.store import KeyStore, Ledger, Stores, open_stores

from ..required import unavailable
from .auth_testing import Completed, subprocess_env

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def postgres_admin() -> asyncpg.Connection:
    """A connection to the test PostgreSQL; skips the test without one, fails it in CI."""
    try:
        return await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable(f"PostgreSQL at {display_url(POSTGRES_URL)}", exc)


def with_search_path(url: str, schema: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + [("search_path", schema)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A URL whose stores work in a new, empty schema; the schema is dropped afterwards."""
    admin = await postgres_admin()
    schema = f"sb_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def run_switchboard(*args: str, **env: str) -> Completed:
    """The `switchboard` CLI as a real process, its database named by `args` or `env` alone."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_auth.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=subprocess_env(**env),
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return Completed(proc.returncode, stdout.decode(), stderr.decode())


@dataclasses.dataclass
class Backend:
    """One database of one backend, and every store a test opened on it (closed after the test)."""

    name: str  # "sqlite" or "postgres"
    database_url: str  # PostgreSQL, or empty
    db_path: str  # SQLite, or empty
    _closers: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)

    async def stores(self) -> Stores:
        """Both stores, as the service opens them."""
        stores = await open_stores(self.database_url, self.db_path)
        self._closers.append(stores.close)
        return stores

    async def keys(self) -> KeyStore:
        """A key store of its own (another replica's, or the CLI's)."""
        store: SqliteKeyStore | PostgresKeyStore = await (
            PostgresKeyStore.open(self.database_url) if self.database_url else SqliteKeyStore.open(self.db_path))
        self._closers.append(store.close)
        return store

    async def ledger(self) -> Ledger:
        """A ledger of its own (another replica's)."""
        ledger: SqliteLedger | PostgresLedger = await (
            PostgresLedger.open(self.database_url) if self.database_url else SqliteLedger.open(self.db_path))
        self._closers.append(ledger.close)
        return ledger

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """What a query (written for both: CAST booleans to INTEGER) reads straight from the database."""
        if not self.database_url:
            with sqlite3.connect(self.db_path) as conn:
                return conn.execute(sql).fetchall()
        conn = await asyncpg.connect(self.database_url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    def cli_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else ["--db", self.db_path]

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()


@pytest.fixture(name="backend", params=["sqlite", "postgres"])
async def backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        backend = Backend("sqlite", "", str(tmp_path / "auth.db"))
        try:
            yield backend
        finally:
            await backend.close()
        return
    async with postgres_schema() as url:
        backend = Backend("postgres", url, "")
        try:
            yield backend
        finally:
            await backend.close()


@pytest.fixture(name="postgres_url")
async def postgres_url_fixture() -> AsyncIterator[str]:
    """The URL of a new, empty schema of the test PostgreSQL (dropped after the test)."""
    async with postgres_schema() as url:
        yield url
