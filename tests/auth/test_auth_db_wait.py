"""`python -m switchboard_auth` started while PostgreSQL cannot be reached: it waits (not listening) for up to
SWITCHBOARD_AUTH_DATABASE_WAIT_SECONDS and serves once the database answers, or exits with status 3 after the
wait; a database that answers but refuses (unknown database or role) still exits at once."""

import asyncio
import signal
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.keys import create_key
from switchboard_auth.postgres_store import PostgresKeyStore
from switchboard_stack.faultproxy import FaultProxy

from .auth_testing import PEPPER, free_port, subprocess_env
from .store_backends import POSTGRES_URL, postgres_admin, postgres_schema, run_switchboard

SERVICE = "switchboard.auth.v1.AuthService"
PASSWORD = "pw-n0t-shown"  # the test PostgreSQL trusts local logins, so any password passes; none may be logged


def through(url: str, port: int, password: str = PASSWORD) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` and a password added."""
    parts = urllib.parse.urlsplit(url)
    user = parts.username or "postgres"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@127.0.0.1:{port}"))


async def start_auth(database_url: str, wait_seconds: float, grpc_port: int) -> asyncio.subprocess.Process:
    env = subprocess_env(
        SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{grpc_port}",
        SWITCHBOARD_AUTH_METRICS_PORT="-1",
        SWITCHBOARD_AUTH_DATABASE_URL=database_url,
        SWITCHBOARD_AUTH_DATABASE_WAIT_SECONDS=str(wait_seconds),
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_auth", env=env, stderr=asyncio.subprocess.PIPE
    )


async def exit_status(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, float]:
    """The status, stderr and seconds taken of a process expected to exit within `timeout` (killed if not)."""
    started = time.monotonic()
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode(), time.monotonic() - started


async def health_status(health: health_pb2_grpc.HealthStub) -> int | None:
    """The health of the auth service, or None when nothing answers."""
    try:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
    except grpc.aio.AioRpcError:
        return None
    return int(reply.status)


@pytest.fixture
async def refusing_proxy() -> AsyncIterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the test PostgreSQL, refusing connections, and a schema of its own behind it."""
    async with postgres_schema() as direct_url:
        parts = urllib.parse.urlsplit(direct_url)
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        try:
            await proxy.refuse()
            yield proxy, direct_url
        finally:
            await proxy.close()


async def test_auth_waits_for_an_unreachable_database_then_serves(
        refusing_proxy: tuple[FaultProxy, str]) -> None:
    proxy, direct_url = refusing_proxy
    keys = await PostgresKeyStore.open(direct_url)
    try:
        plaintext, _ = await create_key(keys, "waited", pepper=PEPPER, platforms=["openai"])
    finally:
        await keys.close()
    grpc_port = free_port()
    proc = await start_auth(through(direct_url, proxy.port), 60, grpc_port)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await asyncio.sleep(2.5)
            assert proc.returncode is None, "auth exited while the database was unreachable"
            assert await health_status(health) is None, "auth listens before it has a database"

            await proxy.resume()
            deadline = time.monotonic() + 20
            while await health_status(health) != health_pb2.HealthCheckResponse.SERVING:
                assert proc.returncode is None, "auth exited after the database came back"
                assert time.monotonic() < deadline, "auth never served after the database came back"
                await asyncio.sleep(0.2)

            stub = auth_pb2_grpc.AuthServiceStub(channel)
            allowed = await stub.Authorize(
                auth_pb2.AuthorizeRequest(credential=plaintext, platforms=["openai"], model="m"), timeout=10)
            assert allowed.decision == auth_pb2.DECISION_ALLOW

        proc.send_signal(signal.SIGTERM)
        status, stderr, _ = await exit_status(proc, 15)
        assert status == 0, stderr
        assert stderr.count("database unreachable, retrying for up to 60 s") == 1, stderr
        assert "database reachable after" in stderr, stderr
        assert PASSWORD not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_auth_exits_with_3_once_the_wait_is_over(refusing_proxy: tuple[FaultProxy, str]) -> None:
    proxy, direct_url = refusing_proxy
    proc = await start_auth(through(direct_url, proxy.port), 1, free_port())
    status, stderr, _ = await exit_status(proc, 15)
    assert status == 3, stderr
    assert "database unreachable, retrying for up to 1 s" in stderr, stderr
    assert "after waiting 1 s" in stderr, stderr
    assert PASSWORD not in stderr


@pytest.mark.parametrize("change", ["database", "user"])
async def test_a_database_that_answers_but_refuses_exits_at_once(change: str) -> None:
    await (await postgres_admin()).close()  # skips without a test PostgreSQL
    parts = urllib.parse.urlsplit(POSTGRES_URL)
    if change == "database":
        parts = parts._replace(path="/sb_no_such_database")
    else:
        parts = parts._replace(netloc=f"sb_no_such_role@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}")
    proc = await start_auth(urllib.parse.urlunsplit(parts), 60, free_port())
    status, stderr, _ = await exit_status(proc, 20)
    assert status == 3, stderr
    assert "cannot open database" in stderr, stderr
    assert "retrying" not in stderr, stderr


async def test_the_cli_on_an_unreachable_database_exits_with_3() -> None:
    completed = await run_switchboard("db", "migrate", "--database-url",
                                      f"postgresql://auth:{PASSWORD}@127.0.0.1:{free_port()}/test")
    assert completed.returncode == 3, completed.stderr
    assert PASSWORD not in completed.stderr + completed.stdout
