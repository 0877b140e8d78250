"""The PostgreSQL backend: keys and the usage ledger shared by every auth replica, via an asyncpg pool.

Rules owned here (the same contract as `sqlite_store`, `store` states it):
- The schema is brought up to date on open (`postgres_migrations.migrate`, under an advisory lock) and a
  database written by a newer build is refused.
- One pool per process serves both stores (`connect`); a store given a pool does not close it.
- Every asyncpg or connection error becomes `StoreError`, and no message carries the URL's password
  (`display_url` is the form that may be logged).
- Names and hashes are unique (`KeyNameTaken` on a taken name); `get_by_hash` matches the current or the
  previous (rotation) hash; names sort bytewise (`COLLATE "C"`), as SQLite sorts them.
- `touch` moves last_used_at forward only, also when replicas touch one key at once (the condition is
  re-checked on the locked row).
- The ledger writes each request_id once with one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING
  RETURNING`: replicas appending the same batch at once write each row once between them, and each learns
  exactly which rows it wrote. Rows are inserted in request_id order, so two such appends never deadlock.
- PostgreSQL text cannot hold NUL: a NUL in a ledger text field (they come from the network) is stored as
  U+FFFD rather than failing the batch forever.
- Only the key's hash is written; the plaintext never reaches this module.
"""

import contextlib
import json
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Self

import asyncpg

from switchboard_auth import postgres_migrations
from switchboard_auth.errors import DatabaseUnreachable, KeyNameTaken, StoreError
from switchboard_auth.keys import KeyRecord, KeyState, details_fields
from switchboard_auth.store import CHANGE_LOG_KEPT
from switchboard_auth.usage import (
    SUMMARY_TOTALS_SQL,
    Dimension,
    UsageEntry,
    UsageSummary,
    check_dimensions,
    summary_of,
)

SCHEMA_VERSION = postgres_migrations.SCHEMA_VERSION
_POOL_MIN, _POOL_MAX = 1, 10
_CONNECT_TIMEOUT_SECONDS = 10.0
_COMMAND_TIMEOUT_SECONDS = 30.0
_SCHEMES = ("postgresql", "postgres")
# What asyncpg and the network raise when the database cannot serve.
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
# Of those, what means no connection could be made at all (worth trying again): refused, reset, timed out, the
# name not resolved, the server starting up or shutting down. Not a TLS failure (OSError too, but configuration).
_UNREACHABLE_ERRORS = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError)


def display_url(url: str) -> str:
    """`url` with its password (in the authority or as a query parameter) masked: the form to log or show."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = urllib.parse.urlencode(
        [(name, "***" if name in _SECRET_PARAMETERS else value)
         for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [value for name, value in urllib.parse.parse_qsl(parts.query) if name in _SECRET_PARAMETERS and value]
    return [s for secret in found for s in {secret, urllib.parse.quote(secret, safe="")}]


def _masked(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


async def connect(url: str) -> asyncpg.Pool:
    """A pool on the database at `url` (postgresql://…), schema untouched; StoreError when it cannot be had,
    DatabaseUnreachable (a StoreError) when no connection could be made at all."""
    if urllib.parse.urlsplit(url).scheme not in _SCHEMES:
        raise StoreError(f"not a PostgreSQL URL: {display_url(url)!r} (expected postgresql://USER@HOST:PORT/DB)")
    try:
        pool = await asyncpg.create_pool(url, min_size=_POOL_MIN, max_size=_POOL_MAX,
                                         timeout=_CONNECT_TIMEOUT_SECONDS, command_timeout=_COMMAND_TIMEOUT_SECONDS)
    except (*_DATABASE_ERRORS, ValueError) as exc:
        message = f"cannot open database {display_url(url)}: {_masked(str(exc) or type(exc).__name__, url)}"
        if isinstance(exc, _UNREACHABLE_ERRORS) and not isinstance(exc, ssl.SSLError):
            raise DatabaseUnreachable(message) from None
        raise StoreError(message) from None
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Applies the migrations the database lacks (`postgres_migrations`); returns their versions."""
    with _store_errors("schema migration"):
        async with pool.acquire() as conn:
            return await postgres_migrations.migrate(conn)


async def open_pool(url: str) -> asyncpg.Pool:
    """`connect` and `migrate`: a pool on an up-to-date schema."""
    pool = await connect(url)
    try:
        await migrate(pool)
    except BaseException:
        await pool.close()
        raise
    return pool


@contextlib.contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Keeps asyncpg out of the callers: its errors become `StoreError`."""
    try:
        yield
    except _DATABASE_ERRORS as exc:
        raise StoreError(f"{action} failed: {type(exc).__name__}: {exc}") from exc


_KEY_COLUMNS = (
    "key_id, name, key_hash, state, created_at, expires_at, allowed_platforms, allowed_models, key_groups,"
    " last_used_at, key_prefix, previous_key_hash, previous_valid_until, details"
)
# What `update` may change: all but the id, the name, when it was made and when it was last used.
_MUTABLE = ("key_hash", "state", "expires_at", "allowed_platforms", "allowed_models", "key_groups", "key_prefix",
            "previous_key_hash", "previous_valid_until", "details")
# Names never look like key_ids (keys.validate_name), so at most one row matches.
_BY_REF = "key_id = $1 OR name = $1"


def _record(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        name=row["name"],
        key_hash=row["key_hash"],
        state=KeyState(row["state"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        allowed_platforms=tuple(row["allowed_platforms"]),
        allowed_models=tuple(row["allowed_models"]),
        groups=tuple(row["key_groups"]),
        last_used_at=row["last_used_at"],
        key_prefix=row["key_prefix"],
        previous_key_hash=row["previous_key_hash"],
        previous_valid_until=row["previous_valid_until"],
        **details_fields(json.loads(row["details"])),
    )


def _params(record: KeyRecord) -> dict[str, Any]:
    """The row of a record, by column name."""
    return {
        "key_id": record.key_id,
        "name": record.name,
        "key_hash": record.key_hash,
        "state": record.state.value,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "allowed_platforms": list(record.allowed_platforms),
        "allowed_models": list(record.allowed_models),
        "key_groups": list(record.groups),
        "last_used_at": record.last_used_at,
        "key_prefix": record.key_prefix,
        "previous_key_hash": record.previous_key_hash,
        "previous_valid_until": record.previous_valid_until,
        "details": json.dumps(record.details(), sort_keys=True),
    }


class _OnPool:
    """A store on a pool it may own (then closing the store closes the pool)."""

    _closed_message = "store is closed"

    def __init__(self, pool: asyncpg.Pool, *, owns_pool: bool = False) -> None:
        self._pool: asyncpg.Pool | None = pool
        self._owns_pool = owns_pool

    @classmethod
    async def open(cls, url: str) -> Self:
        """A store with a pool of its own, on an up-to-date schema."""
        return cls(await open_pool(url), owns_pool=True)

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(self._closed_message)
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._owns_pool:
            await pool.close()


class PostgresKeyStore(_OnPool):
    """`store.KeyStore` on a PostgreSQL pool."""

    _closed_message = "key store is closed"

    async def _one(self, sql: str, *params: Any) -> KeyRecord | None:
        with _store_errors("key lookup"):
            row = await self._db.fetchrow(sql, *params)
        return None if row is None else _record(row)

    async def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 OR previous_key_hash = $1", key_hash)

    async def get(self, ref: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE {_BY_REF}", ref)

    async def create(self, record: KeyRecord) -> None:
        row = _params(record)
        placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        try:
            with _store_errors(f"storing key {record.name!r}"):
                await self._db.execute(f"INSERT INTO api_keys ({', '.join(row)}) VALUES ({placeholders})",
                                       *row.values())
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, asyncpg.UniqueViolationError) and cause.constraint_name == "api_keys_name_unique":
                raise KeyNameTaken(record.name) from None
            raise

    async def list_all(self) -> list[KeyRecord]:
        with _store_errors("key listing"):
            rows = await self._db.fetch(f'SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY name COLLATE "C"')
        return [_record(row) for row in rows]

    async def set_state(self, ref: str, state: KeyState) -> KeyRecord | None:
        return await self._one(
            f"UPDATE api_keys SET state = $2 WHERE {_BY_REF} RETURNING {_KEY_COLUMNS}", ref, state.value)

    async def update(self, record: KeyRecord) -> KeyRecord | None:
        row = _params(record)
        changes = ", ".join(f"{column} = ${i}" for i, column in enumerate(_MUTABLE, start=2))
        return await self._one(f"UPDATE api_keys SET {changes} WHERE key_id = $1 RETURNING {_KEY_COLUMNS}",
                               record.key_id, *(row[column] for column in _MUTABLE))

    async def delete(self, ref: str) -> KeyRecord | None:
        return await self._one(f"DELETE FROM api_keys WHERE {_BY_REF} RETURNING {_KEY_COLUMNS}", ref)

    async def changes_since(self, seq: int) -> tuple[int, list[str]]:
        with _store_errors("key change log read"):
            if seq < 0:
                return int(await self._db.fetchval("SELECT COALESCE(MAX(seq), 0) FROM key_changes")), []
            rows = await self._db.fetch("SELECT seq, key_id FROM key_changes WHERE seq > $1 ORDER BY seq", seq)
            if not rows:
                return seq, []
            last = int(rows[-1]["seq"])
            if last % 1000 == 0 or len(rows) >= 1000:
                await self._db.execute("DELETE FROM key_changes WHERE seq <= $1", last - CHANGE_LOG_KEPT)
        return last, list(dict.fromkeys(row["key_id"] for row in rows))

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        if not last_used:
            return
        with _store_errors("last_used_at update"):
            await self._db.execute(
                "UPDATE api_keys AS k SET last_used_at = u.at"
                " FROM unnest($1::text[], $2::timestamptz[]) AS u(key_id, at)"
                " WHERE k.key_id = u.key_id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
                list(last_used), list(last_used.values()),
            )


# Column, array type: one unnest argument per column.
_USAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("request_id", "text"),
    ("key_id", "text"),
    ("platform", "text"),
    ("account_id", "text"),
    ("model", "text"),
    ("upstream_model", "text"),
    ("input_tokens", "bigint"),
    ("output_tokens", "bigint"),
    ("cache_read_input_tokens", "bigint"),
    ("cache_creation_input_tokens", "bigint"),
    ("reasoning_tokens", "bigint"),
    ("status_code", "integer"),
    ("stream", "boolean"),
    ("truncated", "boolean"),
    ("started_at", "timestamptz"),
    ("duration_seconds", "double precision"),
    ("time_to_first_token_seconds", "double precision"),
    ("client_format", "text"),
    ("admission_id", "text"),
    ("session_id", "text"),
    ("recorded_at", "timestamptz"),
    ("usage_estimated", "boolean"),
    ("end_reason", "text"),
    ("cache_creation_5m_input_tokens", "bigint"),
    ("cache_creation_1h_input_tokens", "bigint"),
    ("failed", "boolean"),
    ("cost_micro_usd", "bigint"),
    ("client_app", "text"),
)
_USAGE_NAMES = ", ".join(name for name, _ in _USAGE_COLUMNS)
_INSERT_USAGE = (
    f"INSERT INTO usage_records ({_USAGE_NAMES}) SELECT {_USAGE_NAMES} FROM unnest("
    + ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(_USAGE_COLUMNS, start=1))
    + f") AS batch({_USAGE_NAMES}) ORDER BY request_id COLLATE \"C\""
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
)


def _text(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _usage_columns(entries: Sequence[UsageEntry]) -> list[list[Any]]:
    """The batch as one list per column, in `_USAGE_COLUMNS` order."""
    columns: list[list[Any]] = [[] for _ in _USAGE_COLUMNS]
    for entry in entries:
        for column, (name, kind) in zip(columns, _USAGE_COLUMNS, strict=True):
            value = getattr(entry, name)
            column.append(_text(value) if kind == "text" else value)
    return columns


# What a summary groups by, per dimension (the fields of usage.DIMENSION_FIELDS), and what it totals
# (usage.SUMMARY_TOTALS); sqlite_store has the same in its dialect.
_SUMMARY_GROUPS: dict[Dimension, tuple[str, ...]] = {
    Dimension.KEY: ("key_id",),
    Dimension.MODEL: ("platform", "CASE WHEN upstream_model = '' THEN model ELSE upstream_model END"),
    Dimension.ACCOUNT: ("account_id",),
    Dimension.DAY: ("to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",),
}


def _summary_sql(by: Sequence[Dimension], since: datetime | None, until: datetime | None,
                 key_id: str | None) -> tuple[str, list[Any]]:
    groups = [expression for dimension in by for expression in _SUMMARY_GROUPS[dimension]]
    conditions: list[str] = []
    params: list[Any] = []
    for condition, value in (("key_id = ${}", key_id), ("started_at >= ${}", since), ("started_at < ${}", until)):
        if value is not None:
            params.append(value)
            conditions.append(condition.format(len(params)))
    sql = f"SELECT {', '.join([*groups, SUMMARY_TOTALS_SQL])} FROM usage_records"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if groups:
        order = ", ".join(f'{expression} COLLATE "C"' for expression in groups)
        sql += f" GROUP BY {', '.join(groups)} ORDER BY {order}"
    return sql, params


class PostgresLedger(_OnPool):
    """`store.Ledger` on a PostgreSQL pool."""

    _closed_message = "ledger is closed"

    async def append(self, entries: Sequence[UsageEntry]) -> list[UsageEntry]:
        if not entries:
            return []
        # A request_id repeated inside the batch is written once: its first occurrence.
        first: dict[str, UsageEntry] = {}
        for entry in entries:
            first.setdefault(entry.request_id, entry)
        with _store_errors("usage append"):
            rows = await self._db.fetch(_INSERT_USAGE, *_usage_columns(list(first.values())))
        inserted = {_text(row["request_id"]) for row in rows}
        new: list[UsageEntry] = []
        for entry in entries:
            if _text(entry.request_id) in inserted:
                inserted.discard(_text(entry.request_id))
                new.append(entry)
        return new

    async def summary(
        self, *, since: datetime | None = None, until: datetime | None = None, key_id: str | None = None,
        by: Sequence[Dimension] = (),
    ) -> list[UsageSummary]:
        dimensions = check_dimensions(by)
        sql, params = _summary_sql(dimensions, since, until, key_id)
        with _store_errors("usage summary"):
            rows = await self._db.fetch(sql, *params)
        summaries = [summary_of(dimensions, tuple(row)) for row in rows]
        return [summary for summary in summaries if summary.requests]  # no groups and no entries: one row of 0
