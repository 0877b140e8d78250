"""The storage interfaces auth depends on; backends implement them, service logic sees only these.

Rules owned here:
- A key is found by the hash of the presented key, or administratively by
  "NAME or KEY_ID" (names never look like key_ids, so a ref is unambiguous).
- Names and hashes are unique; `create` raises `KeyNameTaken` on a taken name.
- The ledger writes each `request_id` at most once and reports which entries
  were new, so nothing downstream double-counts a retried batch.
- Timestamps cross this boundary as aware UTC datetimes; each backend picks
  its own column types.

Two backends implement them: `sqlite_store` (one local file, the embedded default) and `postgres_store`
(shared by many auth replicas). `open_stores` is the one place that opens the configured one.
"""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from switchboard_auth.keys import KeyRecord, KeyState
from switchboard_auth.usage import Dimension, UsageEntry, UsageSummary

# The key change log keeps this many entries; followers poll every fraction of a second, so older ones are history.
CHANGE_LOG_KEPT = 10_000


class KeyStore(Protocol):
    async def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key whose current secret, or whose previous one (a rotation's grace), has this hash."""
        ...

    async def get(self, ref: str) -> KeyRecord | None:
        """By key_id or by name."""
        ...

    async def create(self, record: KeyRecord) -> None: ...

    async def list_all(self) -> list[KeyRecord]:
        """Every key, ordered by name."""
        ...

    async def set_state(self, ref: str, state: KeyState) -> KeyRecord | None:
        """Returns the updated record, or None when no key matches `ref`."""
        ...

    async def update(self, record: KeyRecord) -> KeyRecord | None:
        """Replaces everything of the key with `record.key_id` but its id, name, creation and last use;
        returns the stored record, or None when there is no such key."""
        ...

    async def delete(self, ref: str) -> KeyRecord | None:
        """Returns the deleted record, or None when no key matches `ref`."""
        ...

    async def changes_since(self, seq: int) -> tuple[int, list[str]]:
        """The key change log after `seq`: (the latest seq, the key_ids changed since, each once). `seq` < 0 asks
        only for the latest seq (a follower starting). A key's creation, edit, state change, rotation and
        deletion are changes; its last use is not."""
        ...

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        """Moves each key_id's last_used_at forward (never back) in one batch."""
        ...

    async def close(self) -> None: ...


class Ledger(Protocol):
    async def append(self, entries: Sequence[UsageEntry]) -> list[UsageEntry]:
        """Writes entries whose request_id is new; returns exactly those, in order."""
        ...

    async def summary(
        self, *, since: datetime | None = None, until: datetime | None = None, key_id: str | None = None,
        by: Sequence[Dimension] = (),
    ) -> list[UsageSummary]:
        """Totals of the entries that started in [since, until) (None: no bound), of one key or of all, one per
        distinct value of the `by` dimensions (in that order; ValueError when one repeats), ordered by them
        (text bytewise, days in time order); none when no entry matches."""
        ...

    async def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Stores:
    """The key store and ledger of one database, open, with what opening them did."""

    keys: KeyStore
    ledger: Ledger
    location: str  # which database, safe to log or print (no password)
    schema_version: int  # this build's, which the database is now at
    migrated: tuple[int, ...]  # the schema versions applied while opening (empty: it was up to date)
    _close: Callable[[], Awaitable[None]] = dataclasses.field(repr=False)

    async def close(self) -> None:
        await self._close()


async def open_stores(database_url: str, db_path: str) -> Stores:
    """PostgreSQL at `database_url` (postgresql://…) when it is set, else the SQLite file at `db_path`; the
    schema is brought up to date first. StoreError when the database cannot be used."""
    if database_url:
        from switchboard_auth import postgres_store

        pool = await postgres_store.connect(database_url)
        try:
            applied = await postgres_store.migrate(pool)
        except BaseException:
            await pool.close()
            raise
        pg_keys, pg_ledger = postgres_store.PostgresKeyStore(pool), postgres_store.PostgresLedger(pool)

        async def close_postgres() -> None:
            await pg_ledger.close()
            await pg_keys.close()
            await pool.close()

        return Stores(pg_keys, pg_ledger, f"PostgreSQL {postgres_store.display_url(database_url)}",
                      postgres_store.SCHEMA_VERSION, tuple(applied), close_postgres)

    from switchboard_auth import sqlite_store

    applied = await sqlite_store.migrate(db_path)
    sqlite_keys = await sqlite_store.SqliteKeyStore.open(db_path)
    try:
        sqlite_ledger = await sqlite_store.SqliteLedger.open(db_path)
    except BaseException:
        await sqlite_keys.close()
        raise

    async def close_sqlite() -> None:
        await sqlite_ledger.close()
        await sqlite_keys.close()

    return Stores(sqlite_keys, sqlite_ledger, f"SQLite {db_path}", sqlite_store.SCHEMA_VERSION, tuple(applied),
                  close_sqlite)
