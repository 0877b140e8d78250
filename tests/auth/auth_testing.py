"""Helpers shared by the auth tests (a uniquely named module, so no clash with other test trees)."""

import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.keys import KeyRecord, create_key
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger

PEPPER = "test-pepper"
CACHE_TTL = 2.0


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@dataclasses.dataclass
class Harness:
    stub: auth_pb2_grpc.AuthServiceStub
    channel: grpc.aio.Channel
    keys: SqliteKeyStore
    ledger: SqliteLedger
    db_path: Path
    cache_clock: ManualClock  # drives the key cache TTL
    wall_clock: ManualClock  # POSIX seconds, drives key expiry

    async def create(self, name: str, **options: object) -> tuple[str, KeyRecord]:
        return await create_key(self.keys, name, pepper=PEPPER, **options)  # type: ignore[arg-type]

    async def authorize(
        self, credential: str, platforms: Sequence[str] = ("openai",), model: str = "gpt-4o",
        client: auth_pb2.ClientMetadata | None = None,
    ) -> auth_pb2.AuthorizeResponse:
        request = auth_pb2.AuthorizeRequest(credential=credential, platforms=platforms, model=model, client=client)
        return await self.stub.Authorize(request, timeout=5)

    async def authenticate(self, credential: str) -> auth_pb2.AuthorizeResponse:
        return await self.stub.Authenticate(auth_pb2.AuthenticateRequest(credential=credential), timeout=5)

    def expire_cache(self) -> None:
        self.cache_clock.advance(CACHE_TTL + 0.001)


@dataclasses.dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_AUTH_KEY_PEPPER"] = PEPPER
    env.update(extra)
    return env


async def run_cli(*args: str, db: Path, executable: Sequence[str] | None = None) -> Completed:
    """Runs the CLI as a real process (never blocking the loop the in-process server runs on)."""
    command = [*(executable or (sys.executable, "-m", "switchboard_auth.cli")), "--db", str(db), *args]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(),
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return Completed(proc.returncode, stdout.decode(), stderr.decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
