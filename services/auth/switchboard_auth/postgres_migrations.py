"""The PostgreSQL schema of auth, as numbered migrations, and the one routine that applies them.

Rules owned here:
- Migration N upgrades the schema from N-1. A shipped migration is never edited: a change is a new
  migration appended to `MIGRATIONS`. Each applied one is recorded in `schema_migrations` with a checksum of
  its statements, and a database whose recorded migration differs from this build's is refused.
- `migrate` applies what is missing in one transaction, under a transaction-scoped advisory lock taken
  before anything else: auth replicas starting together apply each migration once, the others wait for the
  lock and then find nothing to do. The lock is per schema, so schemas of one database do not wait on each
  other.
- A database at a version this build does not know (written by a newer build) is refused with `StoreError`
  before anything is changed.
- The tables go into the connection's current schema (the first of its `search_path`), so a deployment may
  keep auth in a schema of its own (`?search_path=NAME` on the URL).
- Column types: timestamps are `timestamptz` (aware UTC datetimes both ways), lists are `text[]`, a key's
  details (`KeyRecord.details()`) one `jsonb` document, token counts and costs `bigint`.
"""

import dataclasses
import hashlib

import asyncpg

from switchboard_auth.errors import StoreError


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        """Of the statements as written: editing a shipped migration changes it."""
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()


# Never edit a shipped entry; append a new one.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "keys and usage ledger", (
        """CREATE TABLE api_keys (
            key_id               text PRIMARY KEY,
            name                 text NOT NULL CONSTRAINT api_keys_name_unique UNIQUE,
            key_hash             text NOT NULL CONSTRAINT api_keys_key_hash_unique UNIQUE,
            state                text NOT NULL CHECK (state IN ('active', 'disabled')),
            created_at           timestamptz NOT NULL,
            expires_at           timestamptz,
            allowed_platforms    text[] NOT NULL DEFAULT '{}',
            allowed_models       text[] NOT NULL DEFAULT '{}',
            key_groups           text[] NOT NULL DEFAULT '{}',
            last_used_at         timestamptz,
            key_prefix           text NOT NULL DEFAULT '',
            previous_key_hash    text CONSTRAINT api_keys_previous_key_hash_unique UNIQUE,
            previous_valid_until timestamptz,
            details              jsonb NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE usage_records (
            request_id                     text PRIMARY KEY,
            key_id                         text NOT NULL,
            platform                       text NOT NULL,
            account_id                     text NOT NULL,
            model                          text NOT NULL,
            upstream_model                 text NOT NULL,
            input_tokens                   bigint NOT NULL,
            output_tokens                  bigint NOT NULL,
            cache_read_input_tokens        bigint NOT NULL,
            cache_creation_input_tokens    bigint NOT NULL,
            reasoning_tokens               bigint NOT NULL,
            status_code                    integer NOT NULL,
            stream                         boolean NOT NULL,
            truncated                      boolean NOT NULL,
            started_at                     timestamptz NOT NULL,
            duration_seconds               double precision NOT NULL,
            time_to_first_token_seconds    double precision,
            client_format                  text NOT NULL,
            admission_id                   text NOT NULL,
            session_id                     text NOT NULL,
            recorded_at                    timestamptz NOT NULL,
            usage_estimated                boolean NOT NULL DEFAULT false,
            end_reason                     text NOT NULL DEFAULT '',
            cache_creation_5m_input_tokens bigint NOT NULL DEFAULT 0,
            cache_creation_1h_input_tokens bigint NOT NULL DEFAULT 0,
            failed                         boolean NOT NULL DEFAULT false,
            cost_micro_usd                 bigint
        )""",
        "CREATE INDEX usage_records_key_started ON usage_records (key_id, started_at)",
        "CREATE INDEX usage_records_started ON usage_records (started_at)",
    )),
    Migration(2, "key change log", (
        # Followed by every auth replica (`KeyStore.changes_since`); written by a trigger so that no writer can
        # change a key without it. `last_used_at` is no change.
        """CREATE TABLE key_changes (
            seq        bigserial PRIMARY KEY,
            key_id     text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE FUNCTION api_keys_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO key_changes (key_id) VALUES (OLD.key_id);
            ELSE
                INSERT INTO key_changes (key_id) VALUES (NEW.key_id);
            END IF;
            RETURN NULL;
        END
        $$""",
        "CREATE TRIGGER api_keys_created_or_deleted AFTER INSERT OR DELETE ON api_keys"
        " FOR EACH ROW EXECUTE FUNCTION api_keys_log_change()",
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OF key_hash, state, expires_at, allowed_platforms,"
        " allowed_models, key_groups, previous_key_hash, previous_valid_until, details ON api_keys"
        " FOR EACH ROW EXECUTE FUNCTION api_keys_log_change()",
    )),
    Migration(3, "the client program of a usage record", (
        "ALTER TABLE usage_records ADD COLUMN client_app text NOT NULL DEFAULT ''",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# pg_advisory_xact_lock(int4, int4): this constant ("SwBd") and a hash of the schema the tables go into.
_LOCK_CLASS = 0x53774264


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Brings the schema of `conn`'s current schema up to date; returns the versions it applied (none: it was).

    asyncpg's errors pass through (the caller owns their translation); a newer or edited schema is StoreError."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))", _LOCK_CLASS)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"""
        )
        applied = {row["version"]: row["checksum"]
                   for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
        newest = max(applied, default=0)
        if newest > SCHEMA_VERSION:
            raise StoreError(f"database schema version {newest} is newer than this build ({SCHEMA_VERSION}):"
                             " run a build at least as new")
        for migration in MIGRATIONS:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise StoreError(f"schema migration {migration.version} ({migration.name}) differs from the one"
                                     " applied to this database: a shipped migration was edited")
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                               migration.version, migration.name, migration.checksum)
            applied_now.append(migration.version)
    return applied_now
