"""What only the SQLite backend (sqlite_store) has: its file, WAL, schema versions and in-place upgrades of files
earlier releases left. What both backends do is in test_auth_stores.py."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard_auth.errors import StoreError
from switchboard_auth.sqlite_store import _MIGRATIONS, SCHEMA_VERSION, SqliteKeyStore, SqliteLedger
from switchboard_auth.usage import UsageEntry

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def entry(request_id: str, key_id: str = "key_0123456789ab", **fields: object) -> UsageEntry:
    base: dict[str, object] = {
        "request_id": request_id, "key_id": key_id, "platform": "openai", "model": "gpt-4o",
        "started_at": T0, "recorded_at": T0, "input_tokens": 10, "output_tokens": 5,
    }
    return UsageEntry(**(base | fields))  # type: ignore[arg-type]


def rows(db_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


async def test_schema_is_created_once_and_versioned(db_path: Path) -> None:
    for _ in range(3):
        store = await SqliteKeyStore.open(str(db_path))
        ledger = await SqliteLedger.open(str(db_path))
        await ledger.close()
        await store.close()
    assert rows(db_path, "SELECT version FROM schema_version") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_a_database_from_a_newer_build_is_refused(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    await store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this build"):
        await SqliteKeyStore.open(str(db_path))


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        await SqliteKeyStore.open(str(tmp_path / "missing-dir" / "x.db"))


async def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_rows(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:  # a file as the first release left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in _MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute(
            "INSERT INTO api_keys (key_id, name, key_hash, state, created_at)"
            " VALUES ('key_0123456789ab', 'old', 'h', 'active', '2026-01-01T00:00:00.000000Z')"
        )
        conn.execute(
            "INSERT INTO usage_records VALUES ('old-1', 'key_0123456789ab', 'openai', 'a', 'gpt-4o', 'gpt-4o',"
            " 10, 5, 0, 0, 0, 200, 1, 0, '2026-01-01T00:00:00.000000Z', 1.5, NULL, 'openai', '', '',"
            " '2026-01-01T00:00:01.000000Z')"
        )
    store = await SqliteKeyStore.open(str(db_path))
    ledger = await SqliteLedger.open(str(db_path))
    try:
        assert (await store.get_by_hash("h")).name == "old"  # type: ignore[union-attr]
        assert await ledger.append([entry("old-1")]) == []  # still there, still idempotent
        assert len(await ledger.append([entry("new-1", usage_estimated=True, end_reason="timeout")])) == 1
    finally:
        await ledger.close()
        await store.close()
    assert rows(db_path, "SELECT version FROM schema_version") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert rows(
        db_path, "SELECT request_id, input_tokens, usage_estimated, end_reason FROM usage_records ORDER BY request_id"
    ) == [("new-1", 10, 1, "timeout"), ("old-1", 10, 0, "")]


async def test_a_version_2_database_gains_the_cache_write_split_and_keeps_its_rows(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:  # a file as the release with end_reason left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in (1, 2):
            for statement in _MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
        conn.execute(
            "INSERT INTO usage_records VALUES ('old-1', 'key_0123456789ab', 'anthropic', 'a', 'claude', 'claude',"
            " 10, 5, 3, 40, 0, 200, 1, 0, '2026-01-01T00:00:00.000000Z', 1.5, NULL, 'anthropic', '', '',"
            " '2026-01-01T00:00:01.000000Z', 1, 'client_closed')"
        )
    ledger = await SqliteLedger.open(str(db_path))
    try:
        assert await ledger.append([entry("old-1")]) == []  # still there, still idempotent
        new = entry("new-1", cache_creation_input_tokens=40, cache_creation_5m_input_tokens=15,
                    cache_creation_1h_input_tokens=25)
        assert await ledger.append([new]) == [new]
    finally:
        await ledger.close()
    assert rows(db_path, "SELECT version FROM schema_version") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert rows(
        db_path,
        "SELECT request_id, cache_read_input_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens,"
        " cache_creation_1h_input_tokens, usage_estimated, end_reason FROM usage_records ORDER BY request_id",
    ) == [("new-1", 0, 40, 15, 25, 0, ""), ("old-1", 3, 40, 0, 0, 1, "client_closed")]


async def test_a_version_4_database_gains_cost_and_failed_with_earlier_failures_marked(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:  # a file as the release before costs left it
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version in (1, 2, 3, 4):
            for statement in _MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
        for request_id, status, end_reason, input_tokens in (
            ("ok-1", 200, "complete", 10), ("failed-1", 502, "error", 10), ("empty-1", 200, "upstream_error", 0),
            ("closed-1", 499, "client_closed", 10),
        ):
            conn.execute(
                "INSERT INTO usage_records VALUES (?, 'key_0123456789ab', 'openai', 'a', 'gpt-4o', 'gpt-4o',"
                " ?, 0, 0, 0, 0, ?, 1, 0, '2026-01-01T00:00:00.000000Z', 1.5, NULL, 'openai', '', '',"
                " '2026-01-01T00:00:01.000000Z', 0, ?, 0, 0)",
                (request_id, input_tokens, status, end_reason),
            )
    ledger = await SqliteLedger.open(str(db_path))
    try:
        assert await ledger.append([entry("ok-1")]) == []  # still there, still idempotent
        priced = entry("new-1", cost_micro_usd=1234)
        assert await ledger.append([priced]) == [priced]
    finally:
        await ledger.close()
    assert rows(db_path, "SELECT version FROM schema_version") == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert rows(db_path, "SELECT request_id, failed, cost_micro_usd FROM usage_records ORDER BY request_id") == [
        ("closed-1", 0, None), ("empty-1", 1, 0), ("failed-1", 1, 0), ("new-1", 0, 1234), ("ok-1", 0, None),
    ]
