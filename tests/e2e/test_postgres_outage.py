"""PostgreSQL gone for a few seconds under a running stack (a fault proxy between it and auth): a key auth had
looked up keeps being served, the usage of every request made meanwhile waits in the edge's spool, and once the
database is back every record is in the ledger exactly once."""

import asyncio
import json
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from switchboard_auth.key_changes import POLL_SECONDS
from switchboard_stack.faultproxy import ThreadedFaultProxy
from switchboard_stack.launcher import SIMULATOR_OPENAI_KEY, Ports, Stack

from ..auth.store_backends import POSTGRES_URL, with_search_path
from ..required import unavailable

OPENAI = "/openai/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "postgres outage"}]}


async def _admin(sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    name = f"sb_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE SCHEMA "{name}"'))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    yield name
    asyncio.run(_admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="module")
def proxy() -> Iterator[ThreadedFaultProxy]:
    target = urllib.parse.urlsplit(POSTGRES_URL)
    with ThreadedFaultProxy(target.hostname or "127.0.0.1", target.port or 5432) as running:
        yield running


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, schema: str, proxy: ThreadedFaultProxy) -> Iterator[Stack]:
    parts = urllib.parse.urlsplit(POSTGRES_URL)
    host = f"127.0.0.1:{proxy.port}"
    proxied = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@{host}" if parts.username else host))
    ports = Ports.free()
    env = {"SWITCHBOARD_AUTH_DATABASE_URL": with_search_path(proxied, schema),
           "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2"}
    accounts = [{"name": "sim-openai", "platform": "openai", "base_url": f"http://127.0.0.1:{ports.simulator}",
                 "api_key": SIMULATOR_OPENAI_KEY, "models": ["gpt-*"]}]
    with Stack(Path(tmp_path_factory.mktemp("pg-stack")), ports, accounts=accounts, env=env) as running:
        yield running


def _eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.2)


def _backlog(stack: Stack) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics", timeout=5).text
    return sum(float(line.split()[1]) for line in text.splitlines()
               if line.startswith("switchboard_edge_usage_backlog_records"))


def test_cached_keys_work_and_usage_is_replayed_once(pg_stack: Stack, proxy: ThreadedFaultProxy, schema: str) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "switchboard_auth.cli", "keys", "create", "e2e-pg", "--json",
         "--database-url", with_search_path(POSTGRES_URL, schema)],
        capture_output=True, text=True, check=True)
    key, key_id = json.loads(created.stdout)["key"], json.loads(created.stdout)["key_id"]

    def ledger_rows() -> tuple[int, int]:
        rows = asyncio.run(_admin(f'SELECT count(*) AS n, count(DISTINCT request_id) AS d '
                                  f'FROM "{schema}".usage_records WHERE key_id = \'{key_id}\''))
        return int(rows[0]["n"]), int(rows[0]["d"])

    with httpx.Client(base_url=pg_stack.base_url, timeout=15) as http:
        def ask() -> int:
            return http.post(OPENAI, json=BODY, headers={"authorization": f"Bearer {key}"}).status_code

        assert [ask() for _ in range(3)] == [200] * 3
        # The key's creation reaches auth's change-log follower within a poll or two and drops the key from its
        # cache (a key that changed is read again); the next ask caches it as it stands.
        time.sleep(3 * POLL_SECONDS)
        assert ask() == 200
        _eventually(lambda: ledger_rows() == (4, 4))
        proxy.down()
        try:
            time.sleep(3)  # past auth's key cache TTL (2 s) and the edge's reuse (1 s): auth answers from stale
            assert [ask() for _ in range(5)] == [200] * 5
            time.sleep(1)  # a few flushes fail meanwhile
            assert _backlog(pg_stack) >= 5
        finally:
            proxy.resume()
        _eventually(lambda: ledger_rows() == (9, 9) and _backlog(pg_stack) == 0)
        assert [ask() for _ in range(2)] == [200] * 2
        _eventually(lambda: ledger_rows() == (11, 11))
    auth_log = (pg_stack.workdir / "auth.log").read_text()
    assert auth_log.count("key store unavailable, answering from cached keys") == 1
