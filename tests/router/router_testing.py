"""Helpers for the router tests: YAML accounts on disk, a manual clock, a harness around the servicer."""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import yaml

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_router.credential_overlay import CredentialOverlay
from switchboard_router.file_source import YamlFileSource
from switchboard_router.leases import LeaseTable
from switchboard_router.managed_accounts import ManagedAccounts
from switchboard_router.pool import AccountPool
from switchboard_router.server import RouterServicer
from switchboard_router.state import MemoryState, RouterState


def credential(name: str, platform: str) -> dict[str, Any]:
    """The YAML credential fields a platform requires, with values unique to the account."""
    if platform == "claude-official":
        return {"oauth": {"refresh_token": f"rt-test-{name}-secret"}}
    if platform == "bedrock":
        return {"region": "us-east-1",
                "aws": {"access_key_id": f"AKIATEST{name}", "secret_access_key": f"aws-test-{name}-secret"}}
    return {"api_key": f"sk-test-{name}-secret"}


def account(name: str, platform: str = "claude-console", **fields: Any) -> dict[str, Any]:
    """One YAML account entry with the required fields filled in."""
    return {
        "name": name,
        "platform": platform,
        "base_url": f"http://127.0.0.1:8090/{name}/",
        **credential(name, platform),
        **fields,
    }


def write_accounts(path: Path, accounts: list[dict[str, Any]]) -> None:
    """Atomic replace, as the loader's docstring asks; bumps mtime so a change is always seen."""
    write_text(path, yaml.safe_dump({"accounts": accounts}, sort_keys=False))


def write_text(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    if path.stat().st_mtime_ns <= before:  # coarse filesystem clocks: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


class FakeClock:
    """A clock the test moves by hand; it starts at the wall clock's time, as the router state's times are
    Unix seconds."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Router:
    """The servicer's parts plus a stub talking to it over a real channel."""

    def __init__(self, path: Path, environ: dict[str, str]) -> None:
        self.path = path
        self.credentials_path = path.with_name(path.name + ".credentials.json")
        self.environ = environ
        self.source = YamlFileSource(path, interval_seconds=0.02, environ=environ)
        self.pool = AccountPool(self.source.load(), CredentialOverlay(self.credentials_path))
        self.clock = FakeClock()
        self.leases = LeaseTable(ttl_seconds=600, holder_ttl_seconds=30, clock=self.clock)
        self.servicer = RouterServicer(self.pool, self.leases, state=MemoryState(clock=self.clock), clock=self.clock)
        self.stub: router_pb2_grpc.RouterServiceStub

    def restart(self) -> None:
        """A new router process in all but name: source, stored credentials and pool read again from
        the same files; the gRPC server now serves the new pool."""
        self.source = YamlFileSource(self.path, interval_seconds=0.02, environ=self.environ)
        self.pool = AccountPool(self.source.load(), CredentialOverlay(self.credentials_path))
        self.servicer.pool = self.pool
        self.servicer.managed = ManagedAccounts(self.servicer.state, self.pool)

    def set_accounts(self, accounts: list[dict[str, Any]]) -> None:
        """Rewrites the file and reloads it now (the watcher's job, minus the wait)."""
        write_accounts(self.path, accounts)
        assert self.source.poll(self.pool.replace)

    async def pick(self, model: str = "claude-sonnet-4", platforms: tuple[str, ...] = ("claude-console",),
                   **fields: Any) -> router_pb2.PickResponse:
        request = router_pb2.PickRequest(platforms=platforms, model=model, **fields)
        return await self.stub.Pick(request, timeout=5)

    async def store_credential(self, account_id: str, *, error: str = "", api_key: str = "",
                               **secrets: str) -> router_pb2.StoreCredentialResponse:
        request = router_pb2.StoreCredentialRequest(
            account_id=account_id, error=error,
            credential=router_pb2.Credential(api_key=api_key, secrets=secrets),
        )
        return await self.stub.StoreCredential(request, timeout=5)

    async def heartbeat(self, holder: str, release_held: bool = False) -> router_pb2.HeartbeatResponse:
        request = router_pb2.HeartbeatRequest(holder=holder, release_held=release_held)
        return await self.stub.Heartbeat(request, timeout=5)

    async def list_accounts(self, platform: str = "") -> dict[str, router_pb2.AccountStatus]:
        reply = await self.stub.ListAccounts(router_pb2.ListAccountsRequest(platform=platform), timeout=5)
        return {status.account.id: status for status in reply.accounts}


# The claude-official account `account("sub", platform="claude-official")` defines.
OFFICIAL = "claude-official/sub"


class Replica:
    """One router as its process runs it: its own credentials file, the shared state, the managed-accounts
    watcher (`serving`), a gRPC stub."""

    def __init__(self, accounts_file: Path, credentials_file: Path, state: RouterState) -> None:
        self.credentials_file = credentials_file
        self.pool = AccountPool(YamlFileSource(accounts_file).load(), CredentialOverlay(credentials_file))
        self.state = state
        self.servicer = RouterServicer(self.pool, LeaseTable(ttl_seconds=600, holder_ttl_seconds=30), state=state)
        self.stub: router_pb2_grpc.RouterServiceStub
        self.target = ""  # host:port while served

    async def store(self, **secrets: str) -> None:
        await self.stub.StoreCredential(router_pb2.StoreCredentialRequest(
            account_id=OFFICIAL, credential=router_pb2.Credential(secrets=secrets)), timeout=5)

    async def picked(self) -> dict[str, str]:
        reply = await self.stub.Pick(router_pb2.PickRequest(platforms=["claude-official"], model="claude-sonnet-4"),
                                     timeout=5)
        assert reply.status == router_pb2.PICK_STATUS_OK, reply.message
        await self.stub.Release(router_pb2.ReleaseRequest(lease_id=reply.lease_id), timeout=5)
        return dict(reply.account.credential.secrets)

    async def current(self) -> dict[str, str]:
        reply = await self.stub.GetCredential(router_pb2.GetCredentialRequest(account_id=OFFICIAL), timeout=5)
        return dict(reply.credential.secrets)


@contextlib.asynccontextmanager
async def serving(replica: Replica) -> AsyncIterator[Replica]:
    """The replica's state started, its managed-accounts watcher running and its gRPC server up; all stopped
    afterwards."""
    await replica.state.start()
    watcher = asyncio.create_task(replica.servicer.managed.watch())
    server = grpc.aio.server()
    replica.servicer.register(server)
    replica.target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    try:
        async with grpc.aio.insecure_channel(replica.target) as channel:
            replica.stub = router_pb2_grpc.RouterServiceStub(channel)
            yield replica
    finally:
        await server.stop(None)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await replica.state.close()
