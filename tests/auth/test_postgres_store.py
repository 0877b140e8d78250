"""What only the PostgreSQL backend has: numbered migrations under an advisory lock, replicas sharing one
database, URLs whose password is never shown, and auth and its CLI running on it. What both backends do is in
test_auth_stores.py."""

import asyncio
import random
import signal
import sys
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.errors import StoreError
from switchboard_auth.keys import KeyState, create_key
from switchboard_auth.postgres_migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from switchboard_auth.postgres_store import PostgresKeyStore, PostgresLedger, connect, display_url, migrate
from switchboard_auth.store import open_stores
from switchboard_auth.usage import UsageEntry

from .auth_testing import free_port, subprocess_env
from .store_backends import (
    postgres_url_fixture,  # noqa: F401
    run_switchboard,
)
from .test_auth_main import wait_serving

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# The checksum of every shipped migration. A shipped migration is never edited: add a new one instead (and its
# checksum here).
SHIPPED = {
    1: "f6f4b6f8bbab1141c6724c757d9e39e96ef62726030f7d70a9fc0fe2dc9c454c",
    2: "8f35dc18290bef77dcbf748074a474f64c5af1eec043a2b79cced78320ca9fc8",
    3: "1b4466a9bc4749ac8c572ad64754a789738fa9d78b3473a28bdfc16226adafe9",
}


def entry(request_id: str) -> UsageEntry:
    return UsageEntry(request_id=request_id, key_id="key_0123456789ab", platform="openai", model="gpt-4o",
                      started_at=T0, recorded_at=T0, input_tokens=10, output_tokens=5)


async def fetch(url: str, sql: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------- migrations


def test_migrations_are_numbered_from_one_and_shipped_ones_are_never_edited() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == len(MIGRATIONS)
    for version, checksum in SHIPPED.items():
        assert MIGRATIONS[version - 1].checksum == checksum, f"shipped migration {version} was edited"
    assert set(SHIPPED) == {m.version for m in MIGRATIONS}, "record the checksum of a new migration in SHIPPED"


async def test_an_empty_database_migrates_and_migrating_again_changes_nothing(postgres_url: str) -> None:
    pool = await connect(postgres_url)
    try:
        assert await migrate(pool) == list(range(1, SCHEMA_VERSION + 1))
        recorded = await fetch(postgres_url, "SELECT version, name, checksum, applied_at FROM schema_migrations")
        assert [(v, n, c) for v, n, c, _ in recorded] == [(m.version, m.name, m.checksum) for m in MIGRATIONS]
        tables = await fetch(postgres_url, "SELECT table_name FROM information_schema.tables"
                                           " WHERE table_schema = current_schema() ORDER BY table_name")
        assert tables == [("api_keys",), ("key_changes",), ("schema_migrations",), ("usage_records",)]

        assert await migrate(pool) == []
        assert await fetch(postgres_url, "SELECT version, name, checksum, applied_at FROM schema_migrations") == \
            recorded
    finally:
        await pool.close()


async def test_a_database_from_a_newer_build_is_refused_and_left_alone(postgres_url: str) -> None:
    stores = await open_stores(postgres_url, "")
    await stores.close()
    newer = SCHEMA_VERSION + 1
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'later', 'x')", newer)
    finally:
        await conn.close()
    for opening in (lambda: open_stores(postgres_url, ""), lambda: PostgresKeyStore.open(postgres_url),
                    lambda: PostgresLedger.open(postgres_url)):
        with pytest.raises(StoreError, match=f"schema version {newer} is newer than this build"):
            await opening()
    assert await fetch(postgres_url, "SELECT MAX(version) FROM schema_migrations") == [(newer,)]


async def test_a_database_whose_applied_migration_was_since_edited_is_refused(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                           " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        edited = Migration(1, MIGRATIONS[0].name, (*MIGRATIONS[0].statements, "SELECT 1"))
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (1, $1, $2)",
                           edited.name, edited.checksum)
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="migration 1 .* differs from the one applied"):
        await open_stores(postgres_url, "")


async def test_replicas_starting_together_apply_each_migration_once(postgres_url: str) -> None:
    opened = await asyncio.gather(*(open_stores(postgres_url, "") for _ in range(4)))
    try:
        applied = sorted(stores.migrated for stores in opened)
        assert applied == [(), (), (), tuple(range(1, SCHEMA_VERSION + 1))]
        assert await fetch(postgres_url, "SELECT version FROM schema_migrations ORDER BY version") == [
            (v,) for v in range(1, SCHEMA_VERSION + 1)]
    finally:
        for stores in opened:
            await stores.close()


# ------------------------------------------------------------------------------------------------ replicas


async def test_two_replicas_see_each_others_keys(postgres_url: str) -> None:
    one, other = await open_stores(postgres_url, ""), await open_stores(postgres_url, "")
    try:
        _, record = await create_key(one.keys, "shared", platforms=["openai"])
        assert await other.keys.get_by_hash(record.key_hash) == record
        await other.keys.set_state(record.key_id, KeyState.DISABLED)
        assert (await one.keys.get("shared")).state is KeyState.DISABLED  # type: ignore[union-attr]
        await other.keys.touch({record.key_id: T0})
        await one.keys.touch({record.key_id: T0.replace(hour=1)})  # earlier: never moves it back
        assert (await one.keys.get("shared")).last_used_at == T0  # type: ignore[union-attr]
    finally:
        await one.close()
        await other.close()


async def test_replicas_appending_the_same_batch_at_once_write_each_entry_exactly_once(postgres_url: str) -> None:
    one, other = await open_stores(postgres_url, ""), await open_stores(postgres_url, "")
    shuffled = random.Random(18)
    try:
        for round_ in range(10):  # big batches, several times: two opposite inserts overlap, and would deadlock
            batch = [entry(f"round{round_}-{i:04d}") for i in range(2000)]
            reordered = batch[:]
            shuffled.shuffle(reordered)  # another order: the ledger inserts in request_id order whatever it is given
            first, second = await asyncio.gather(one.ledger.append(batch), other.ledger.append(reordered))
            assert not {e.request_id for e in first} & {e.request_id for e in second}
            assert sorted(e.request_id for e in first + second) == [e.request_id for e in batch]
            written_by_first = {e.request_id for e in first}
            assert first == [e for e in batch if e.request_id in written_by_first]  # in its own batch's order
            assert second == [e for e in reordered if e.request_id not in written_by_first]
        assert await fetch(postgres_url, "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage_records") == [
            (20_000, 20_000)]
    finally:
        await one.close()
        await other.close()


# ------------------------------------------------------------------------------------------- URL handling


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("postgresql://auth:s3cret@db:5432/switchboard", "postgresql://auth:***@db:5432/switchboard",
                     id="password"),
        pytest.param("postgresql://auth@db/switchboard?search_path=sb", "postgresql://auth@db/switchboard?search_path=sb",
                     id="no-password"),
        pytest.param("postgresql://db/sb?user=auth&password=s3cret", "postgresql://db/sb?user=auth&password=***",
                     id="password-parameter"),
    ],
)
def test_a_shown_url_never_holds_the_password(url: str, shown: str) -> None:
    assert display_url(url) == shown


async def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://auth:pw-n0t-shown@127.0.0.1:{free_port()}/test"
    with pytest.raises(StoreError) as refused:
        await open_stores(url, "")
    assert "cannot open database postgresql://auth:***@127.0.0.1" in str(refused.value)
    assert "pw-n0t-shown" not in str(refused.value)


async def test_only_postgresql_urls_are_taken() -> None:
    with pytest.raises(StoreError, match="not a PostgreSQL URL"):
        await open_stores("mysql://auth:pw@db/sb", "")


# ---------------------------------------------------------------------------------------- auth and the CLI


async def test_auth_and_its_cli_run_on_postgresql_and_never_show_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:pw-n0t-shown@")  # trust ignores it
    assert url != postgres_url
    migrated = await run_switchboard("db", "migrate", "--database-url", url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {SCHEMA_VERSION} (applied " in migrated.stdout
    created = await run_switchboard("keys", "create", "on-pg", "--platform", "openai", "--database-url", url)
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.splitlines()[0]

    grpc_port = free_port()
    env = subprocess_env(SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{grpc_port}", SWITCHBOARD_AUTH_METRICS_PORT="-1",
                         SWITCHBOARD_AUTH_DATABASE_URL=url)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard_auth", env=env,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            await wait_serving(health_pb2_grpc.HealthStub(channel), proc)
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            allowed = await stub.Authorize(
                auth_pb2.AuthorizeRequest(credential=plaintext, platforms=["openai"], model="gpt-4o"), timeout=5)
            assert allowed.decision == auth_pb2.DECISION_ALLOW
            record = auth_pb2.UsageRecord(request_id="pg-1", key_id=allowed.identity.key_id, platform="openai",
                                          model="gpt-4o", status_code=200, end_reason="complete",
                                          usage=auth_pb2.TokenUsage(input_tokens=1_000_000))
            accepted = await stub.RecordUsage(auth_pb2.RecordUsageRequest(records=[record]), timeout=5)
            assert accepted.accepted == 1
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "keys and usage ledger in PostgreSQL postgresql://postgres:***@" in log
    assert "pw-n0t-shown" not in log
    assert await fetch(postgres_url, "SELECT request_id, cost_micro_usd > 0 FROM usage_records") == [("pg-1", True)]

    again = await run_switchboard("db", "migrate", "--database-url", url)
    assert again.returncode == 0 and "(up to date)" in again.stdout
    both = await run_switchboard("keys", "list", "--database-url", url, "--db", "x.db")
    assert both.returncode == 2 and "not both" in both.stderr
