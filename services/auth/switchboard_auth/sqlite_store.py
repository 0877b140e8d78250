"""The SQLite backend: keys and the usage ledger in one local file, via aiosqlite.

Rules owned here:
- The schema is created on open, idempotently, under `BEGIN IMMEDIATE`, and
  versioned in `schema_version`; a file written by a newer build is refused.
- WAL mode with a busy timeout, so the CLI and a running service share the file.
- All I/O runs on aiosqlite's worker thread, never on the event loop.
- Timestamps are stored as fixed-width UTC text (`2027-01-01T00:00:00.000000Z`),
  which sorts like time; lists as JSON arrays.
- Only the key's hash is written; the plaintext never reaches this module.
  aiosqlite logs every call with its parameters (the hash among them) at
  DEBUG, so its DEBUG records are dropped at the source, whatever the level.
"""

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import aiosqlite

from switchboard_auth.errors import KeyNameTaken, StoreError
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

# Each entry upgrades the schema from the previous version; never edit a shipped one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE api_keys (
            key_id            TEXT PRIMARY KEY,
            name              TEXT NOT NULL UNIQUE,
            key_hash          TEXT NOT NULL UNIQUE,
            state             TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
            created_at        TEXT NOT NULL,
            expires_at        TEXT,
            allowed_platforms TEXT NOT NULL DEFAULT '[]',
            allowed_models    TEXT NOT NULL DEFAULT '[]',
            key_groups        TEXT NOT NULL DEFAULT '[]',
            last_used_at      TEXT
        )""",
        """CREATE TABLE usage_records (
            request_id                  TEXT PRIMARY KEY,
            key_id                      TEXT NOT NULL,
            platform                    TEXT NOT NULL,
            account_id                  TEXT NOT NULL,
            model                       TEXT NOT NULL,
            upstream_model              TEXT NOT NULL,
            input_tokens                INTEGER NOT NULL,
            output_tokens               INTEGER NOT NULL,
            cache_read_input_tokens     INTEGER NOT NULL,
            cache_creation_input_tokens INTEGER NOT NULL,
            reasoning_tokens            INTEGER NOT NULL,
            status_code                 INTEGER NOT NULL,
            stream                      INTEGER NOT NULL,
            truncated                   INTEGER NOT NULL,
            started_at                  TEXT NOT NULL,
            duration_seconds            REAL NOT NULL,
            time_to_first_token_seconds REAL,
            client_format               TEXT NOT NULL,
            admission_id                TEXT NOT NULL,
            session_id                  TEXT NOT NULL,
            recorded_at                 TEXT NOT NULL
        )""",
        "CREATE INDEX usage_records_key_started ON usage_records (key_id, started_at)",
    ),
    (
        "ALTER TABLE usage_records ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage_records ADD COLUMN end_reason TEXT NOT NULL DEFAULT ''",
    ),
    (
        "ALTER TABLE usage_records ADD COLUMN cache_creation_5m_input_tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage_records ADD COLUMN cache_creation_1h_input_tokens INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "ALTER TABLE api_keys ADD COLUMN key_prefix TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT",
        "ALTER TABLE api_keys ADD COLUMN previous_valid_until TEXT",
        "ALTER TABLE api_keys ADD COLUMN details TEXT NOT NULL DEFAULT '{}'",
        "CREATE UNIQUE INDEX api_keys_previous_hash ON api_keys (previous_key_hash)"
        " WHERE previous_key_hash IS NOT NULL",
    ),
    (
        "ALTER TABLE usage_records ADD COLUMN failed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE usage_records ADD COLUMN cost_micro_usd INTEGER",
        # Earlier rows as usage.upstream_failed judged them when this shipped; the others stay unpriced (NULL).
        "UPDATE usage_records SET failed = 1, cost_micro_usd = 0 WHERE end_reason NOT IN ('client_closed', 'shutdown')"
        " AND (status_code >= 400 OR (end_reason IN ('upstream_error', 'error') AND input_tokens + output_tokens"
        " + cache_read_input_tokens + cache_creation_input_tokens + reasoning_tokens = 0))",
        "CREATE INDEX usage_records_started ON usage_records (started_at)",
    ),
    (
        # The change log every auth replica follows (`KeyStore.changes_since`), written by triggers so that no
        # writer (the CLI, the admin API, an older build) can change a key without it; `last_used_at` is no change.
        "CREATE TABLE key_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key_id TEXT NOT NULL,"
        " changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        "CREATE TRIGGER api_keys_created AFTER INSERT ON api_keys"
        " BEGIN INSERT INTO key_changes (key_id) VALUES (NEW.key_id); END",
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OF key_hash, state, expires_at, allowed_platforms,"
        " allowed_models, key_groups, previous_key_hash, previous_valid_until, details ON api_keys"
        " BEGIN INSERT INTO key_changes (key_id) VALUES (NEW.key_id); END",
        "CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys"
        " BEGIN INSERT INTO key_changes (key_id) VALUES (OLD.key_id); END",
    ),
    ("ALTER TABLE usage_records ADD COLUMN client_app TEXT NOT NULL DEFAULT ''",),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def _above_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


logging.getLogger("aiosqlite").addFilter(_above_debug)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@contextlib.contextmanager
def _store_errors(action: str) -> Iterator[None]:
    """Keeps sqlite3 out of the callers: its errors become `StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{action} failed: {exc}") from exc


async def _connect(path: str, applied: list[int] | None = None) -> aiosqlite.Connection:
    """Opens `path` in autocommit mode (transactions are explicit) and brings the schema up to date (the versions
    it applied are added to `applied`)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        # Checked up front: a failed aiosqlite.connect leaves its worker thread posting to the loop.
        raise StoreError(f"cannot open database {path}: folder {folder} does not exist")
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    try:
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        migrated = await _migrate(conn)
        if applied is not None:
            applied.extend(migrated)
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot prepare database {path}: {exc}") from exc
        raise
    return conn


async def migrate(path: str) -> list[int]:
    """Brings the schema of the file at `path` up to date; returns the versions it applied (none: it was)."""
    migrated: list[int] = []
    conn = await _connect(path, migrated)
    await conn.close()
    return migrated


async def _migrate(conn: aiosqlite.Connection) -> list[int]:
    applied: list[int] = []
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = list(await conn.execute_fetchall("SELECT MAX(version) FROM schema_version"))
        current = rows[0][0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(f"database schema version {current} is newer than this build ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            applied.append(version)
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    return applied


_KEY_COLUMNS = (
    "key_id, name, key_hash, state, created_at, expires_at,"
    " allowed_platforms, allowed_models, key_groups, last_used_at,"
    " key_prefix, previous_key_hash, previous_valid_until, details"
)
# What `update` may change: all but the id, the name, when it was made and when it was last used.
_MUTABLE = ("key_hash", "state", "expires_at", "allowed_platforms", "allowed_models", "key_groups", "key_prefix",
            "previous_key_hash", "previous_valid_until", "details")
# Names never look like key_ids (keys.validate_name), so at most one row matches.
_BY_REF = "key_id = ? OR name = ?"


def _record(row: Sequence[Any]) -> KeyRecord:
    created_at = _dt(row[4])
    assert created_at is not None
    return KeyRecord(
        key_id=row[0],
        name=row[1],
        key_hash=row[2],
        state=KeyState(row[3]),
        created_at=created_at,
        expires_at=_dt(row[5]),
        allowed_platforms=tuple(json.loads(row[6])),
        allowed_models=tuple(json.loads(row[7])),
        groups=tuple(json.loads(row[8])),
        last_used_at=_dt(row[9]),
        key_prefix=row[10],
        previous_key_hash=row[11],
        previous_valid_until=_dt(row[12]),
        **details_fields(json.loads(row[13])),
    )


def _params(record: KeyRecord) -> dict[str, Any]:
    """The row of a record, by column name."""
    return {
        "key_id": record.key_id,
        "name": record.name,
        "key_hash": record.key_hash,
        "state": record.state.value,
        "created_at": _ts(record.created_at),
        "expires_at": None if record.expires_at is None else _ts(record.expires_at),
        "allowed_platforms": json.dumps(list(record.allowed_platforms)),
        "allowed_models": json.dumps(list(record.allowed_models)),
        "key_groups": json.dumps(list(record.groups)),
        "last_used_at": None if record.last_used_at is None else _ts(record.last_used_at),
        "key_prefix": record.key_prefix,
        "previous_key_hash": record.previous_key_hash,
        "previous_valid_until": None if record.previous_valid_until is None else _ts(record.previous_valid_until),
        "details": json.dumps(record.details(), sort_keys=True),
    }


class SqliteKeyStore:
    """`store.KeyStore` on one SQLite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn: aiosqlite.Connection | None = conn

    @classmethod
    async def open(cls, path: str) -> Self:
        return cls(await _connect(path))

    @property
    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("key store is closed")
        return self._conn

    async def _one(self, sql: str, params: Sequence[Any]) -> KeyRecord | None:
        with _store_errors("key lookup"):
            rows = list(await self._db.execute_fetchall(sql, params))
        return _record(rows[0]) if rows else None

    async def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        return await self._one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 OR previous_key_hash = ?1", (key_hash,))

    async def get(self, ref: str) -> KeyRecord | None:
        return await self._one(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE {_BY_REF}", (ref, ref))

    async def create(self, record: KeyRecord) -> None:
        row = _params(record)
        try:
            await self._db.execute(
                f"INSERT INTO api_keys ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)
        except sqlite3.IntegrityError as exc:
            if "api_keys.name" in str(exc):
                raise KeyNameTaken(record.name) from exc
            raise StoreError(f"cannot store key {record.name!r}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store key {record.name!r}: {exc}") from exc

    async def list_all(self) -> list[KeyRecord]:
        with _store_errors("key listing"):
            rows = await self._db.execute_fetchall(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY name")
        return [_record(row) for row in rows]

    async def set_state(self, ref: str, state: KeyState) -> KeyRecord | None:
        return await self._one(
            f"UPDATE api_keys SET state = ? WHERE {_BY_REF} RETURNING {_KEY_COLUMNS}", (state.value, ref, ref)
        )

    async def update(self, record: KeyRecord) -> KeyRecord | None:
        row = _params(record)
        changes = ", ".join(f"{column} = :{column}" for column in _MUTABLE)
        return await self._one(
            f"UPDATE api_keys SET {changes} WHERE key_id = :key_id RETURNING {_KEY_COLUMNS}",
            {column: row[column] for column in (*_MUTABLE, "key_id")})  # type: ignore[arg-type]

    async def delete(self, ref: str) -> KeyRecord | None:
        return await self._one(f"DELETE FROM api_keys WHERE {_BY_REF} RETURNING {_KEY_COLUMNS}", (ref, ref))

    async def changes_since(self, seq: int) -> tuple[int, list[str]]:
        with _store_errors("key change log read"):
            rows = list(await self._db.execute_fetchall(
                "SELECT seq, key_id FROM key_changes WHERE seq > ? ORDER BY seq", (max(seq, 0),)))
            if seq < 0 or not rows:
                latest = list(await self._db.execute_fetchall("SELECT COALESCE(MAX(seq), 0) FROM key_changes"))
                return int(latest[0][0]), []
            last = int(rows[-1][0])
            if last % 1000 == 0 or len(rows) >= 1000:
                await self._db.execute("DELETE FROM key_changes WHERE seq <= ?", (last - CHANGE_LOG_KEPT,))
        return last, list(dict.fromkeys(row[1] for row in rows))

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        if not last_used:
            return
        with _store_errors("last_used_at update"):
            await self._db.executemany(
                "UPDATE api_keys SET last_used_at = ?1"
                " WHERE key_id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
                [(_ts(when), key_id) for key_id, when in last_used.items()],
            )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


_USAGE_COLUMNS = (
    "request_id",
    "key_id",
    "platform",
    "account_id",
    "model",
    "upstream_model",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "status_code",
    "stream",
    "truncated",
    "started_at",
    "duration_seconds",
    "time_to_first_token_seconds",
    "client_format",
    "admission_id",
    "session_id",
    "recorded_at",
    "usage_estimated",
    "end_reason",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "failed",
    "cost_micro_usd",
    "client_app",
)
# 28 parameters a row (SQLite >= 3.32 allows 32766 per statement), bound on the event loop's thread: a
# statement's rows are a few hundred microseconds of it, between which Authorize answers go out.
_ROWS_PER_STATEMENT = 64
_ROW_PLACEHOLDERS = "(" + ", ".join("?" * len(_USAGE_COLUMNS)) + ")"


def _usage_params(entry: UsageEntry) -> tuple[Any, ...]:
    return (
        entry.request_id,
        entry.key_id,
        entry.platform,
        entry.account_id,
        entry.model,
        entry.upstream_model,
        entry.input_tokens,
        entry.output_tokens,
        entry.cache_read_input_tokens,
        entry.cache_creation_input_tokens,
        entry.reasoning_tokens,
        entry.status_code,
        int(entry.stream),
        int(entry.truncated),
        _ts(entry.started_at),
        entry.duration_seconds,
        entry.time_to_first_token_seconds,
        entry.client_format,
        entry.admission_id,
        entry.session_id,
        _ts(entry.recorded_at),
        int(entry.usage_estimated),
        entry.end_reason,
        entry.cache_creation_5m_input_tokens,
        entry.cache_creation_1h_input_tokens,
        int(entry.failed),
        entry.cost_micro_usd,
        entry.client_app,
    )


async def _insert_new(conn: aiosqlite.Connection, entries: Sequence[UsageEntry]) -> set[str]:
    """Inserts in one transaction; returns the request_ids that were not there before."""
    inserted: set[str] = set()
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for start in range(0, len(entries), _ROWS_PER_STATEMENT):
            chunk = entries[start : start + _ROWS_PER_STATEMENT]
            sql = (
                f"INSERT INTO usage_records ({', '.join(_USAGE_COLUMNS)}) VALUES "
                + ", ".join([_ROW_PLACEHOLDERS] * len(chunk))
                + " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
            )
            params = [value for entry in chunk for value in _usage_params(entry)]
            inserted.update(row[0] for row in await conn.execute_fetchall(sql, params))
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    return inserted


# What a summary groups by, per dimension (the fields of usage.DIMENSION_FIELDS), and what it totals
# (usage.SUMMARY_TOTALS); postgres_store has the same in its dialect.
_SUMMARY_GROUPS: dict[Dimension, tuple[str, ...]] = {
    Dimension.KEY: ("key_id",),
    Dimension.MODEL: ("platform", "CASE WHEN upstream_model = '' THEN model ELSE upstream_model END"),
    Dimension.ACCOUNT: ("account_id",),
    Dimension.DAY: ("substr(started_at, 1, 10)",),  # the UTC day of the fixed-width text
}


def _summary_sql(by: Sequence[Dimension], since: datetime | None, until: datetime | None,
                 key_id: str | None) -> tuple[str, list[Any]]:
    groups = [expression for dimension in by for expression in _SUMMARY_GROUPS[dimension]]
    conditions: list[str] = []
    params: list[Any] = []
    for condition, value in (("key_id = ?", key_id), ("started_at >= ?", since and _ts(since)),
                             ("started_at < ?", until and _ts(until))):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    sql = f"SELECT {', '.join([*groups, SUMMARY_TOTALS_SQL])} FROM usage_records"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if groups:
        sql += f" GROUP BY {', '.join(groups)} ORDER BY {', '.join(groups)}"
    return sql, params


class SqliteLedger:
    """`store.Ledger` on one SQLite connection: multi-row INSERT … ON CONFLICT DO NOTHING RETURNING."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn: aiosqlite.Connection | None = conn
        self._lock = asyncio.Lock()  # one explicit transaction at a time on this connection

    @classmethod
    async def open(cls, path: str) -> Self:
        return cls(await _connect(path))

    async def append(self, entries: Sequence[UsageEntry]) -> list[UsageEntry]:
        if not entries:
            return []
        conn = self._conn
        if conn is None:
            raise StoreError("ledger is closed")
        async with self._lock:  # close() waits for this, so `conn` stays open until we are done
            with _store_errors("usage append"):
                inserted = await _insert_new(conn, entries)
        # A request_id repeated inside the batch was written once: count its first occurrence only.
        new: list[UsageEntry] = []
        for entry in entries:
            if entry.request_id in inserted:
                inserted.discard(entry.request_id)
                new.append(entry)
        return new

    async def summary(
        self, *, since: datetime | None = None, until: datetime | None = None, key_id: str | None = None,
        by: Sequence[Dimension] = (),
    ) -> list[UsageSummary]:
        dimensions = check_dimensions(by)
        sql, params = _summary_sql(dimensions, since, until, key_id)
        conn = self._conn
        if conn is None:
            raise StoreError("ledger is closed")
        async with self._lock:  # never inside an append's transaction on this connection
            with _store_errors("usage summary"):
                rows = await conn.execute_fetchall(sql, params)
        summaries = [summary_of(dimensions, row) for row in rows]
        return [summary for summary in summaries if summary.requests]  # no groups and no entries: one row of 0

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await conn.close()
