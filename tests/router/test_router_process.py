"""`python -m switchboard_router` as a real process: health, an RPC, metrics, clean SIGTERM."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc

from ..redis_testing import REDIS_URL, fresh_namespace
from .router_testing import account, write_accounts, write_text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start(tmp_path: Path, grpc_port: int, metrics_port: int, **settings: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "SWITCHBOARD_ROUTER_LISTEN": f"127.0.0.1:{grpc_port}",
        "SWITCHBOARD_ROUTER_METRICS_PORT": str(metrics_port),
        "SWITCHBOARD_ROUTER_ACCOUNTS_FILE": str(tmp_path / "accounts.yaml"),
        "SWITCHBOARD_ROUTER_RELOAD_INTERVAL_SECONDS": "0.1",
        **{f"SWITCHBOARD_ROUTER_{name.upper()}": value for name, value in settings.items()},
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_router", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def test_process_serves_health_and_picks_then_stops_on_sigterm(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml", [account("proc")])
    grpc_port, metrics_port = free_port(), free_port()
    proc = await start(tmp_path, grpc_port, metrics_port, holder_ttl_seconds="7.5")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "switchboard.router.v1.RouterService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, service

            router = router_pb2_grpc.RouterServiceStub(channel)
            pick = await router.Pick(router_pb2.PickRequest(platforms=["claude-console"], model="m"), timeout=5)
            assert pick.status == router_pb2.PICK_STATUS_OK and pick.account.name == "proc"
            beat = await router.Heartbeat(router_pb2.HeartbeatRequest(holder="edge:1"), timeout=5)
            assert beat.holder_ttl.ToMilliseconds() == 7_500
            second = await router.Pick(router_pb2.PickRequest(platforms=["claude-console"], model="m"), timeout=5)
            await router.ReportOutcome(router_pb2.ReportOutcomeRequest(
                lease_id=second.lease_id, account_id=second.account.id, outcome=router_pb2.OUTCOME_RATE_LIMITED,
                status_code=429, upstream_headers={"retry-after": "60"}, model="m"), timeout=5)

        url = f"http://127.0.0.1:{metrics_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
        assert 'switchboard_router_picks_total{account="proc",platform="claude-console"} 2.0' in body
        assert 'switchboard_router_accounts{platform="claude-console",state="ready"} 1.0' in body
        assert 'switchboard_router_account_in_flight{account="proc",platform="claude-console"} 1.0' in body
        held = [line for line in body.splitlines() if line.startswith("switchboard_router_account_hold_seconds{")]
        assert len(held) == 1 and 'kind="throttled"' in held[0] and 50 < float(held[0].rsplit(" ", 1)[1]) <= 60
        assert 'switchboard_router_holds_total{account="proc",kind="throttled",platform="claude-console"} 1.0' in body
        assert 'switchboard_router_account_state{account="proc",platform="claude-console",state="cooling"} 1.0' in body
        assert 'switchboard_router_account_state{account="proc",platform="claude-console",state="ready"} 0.0' in body

        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
        assert proc.returncode == 0, stderr.decode()
        assert b"sk-test-proc-secret" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_process_refuses_to_start_on_an_invalid_file(tmp_path: Path) -> None:
    write_text(tmp_path / "accounts.yaml",
               "accounts:\n  - {name: bad, platform: nope, base_url: 'http://x', api_key: sk-never-logged-123}\n")
    proc = await start(tmp_path, free_port(), -1)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 2
    assert b"accounts[0] (bad): field 'platform': unknown platform 'nope'" in stderr
    assert b"sk-never-logged" not in stderr


async def test_process_refuses_a_non_positive_holder_ttl(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml", [])
    proc = await start(tmp_path, free_port(), -1, holder_ttl_seconds="0")
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 2
    assert b"HOLDER_TTL_SECONDS" in stderr and b"Traceback" not in stderr


async def test_process_keeps_a_stored_credential_across_a_restart(tmp_path: Path) -> None:
    official = {"name": "sub", "platform": "claude-official", "oauth": {"refresh_token": "rt-yaml-never-logged"}}
    write_accounts(tmp_path / "accounts.yaml", [official])
    stored = {"access_token": "at-stored-never-logged", "refresh_token": "rt-stored-never-logged",
              "expires_at": "1900000000"}
    for life in range(2):
        grpc_port = free_port()
        proc = await start(tmp_path, grpc_port, -1)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                await asyncio.wait_for(channel.channel_ready(), timeout=10)
                router = router_pb2_grpc.RouterServiceStub(channel)
                if life == 0:
                    await router.StoreCredential(router_pb2.StoreCredentialRequest(
                        account_id="claude-official/sub", credential=router_pb2.Credential(secrets=stored)),
                        timeout=5)
                pick = await router.Pick(router_pb2.PickRequest(platforms=["claude-official"], model="m"), timeout=5)
                assert dict(pick.account.credential.secrets) == stored
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
            assert proc.returncode == 0, stderr.decode()
            assert b"never-logged" not in stderr
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
    assert (tmp_path / "accounts.yaml.credentials.json").exists()  # the default place, beside the accounts file


async def test_process_refuses_to_start_on_an_unreadable_credentials_file(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml", [])
    write_text(tmp_path / "stored.json", '{"version": 1, "accounts": {"x": "sk-never-logged-456"')
    proc = await start(tmp_path, free_port(), -1, credentials_file=str(tmp_path / "stored.json"))
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 2
    assert f"credentials file {tmp_path / 'stored.json'}: not valid JSON".encode() in stderr
    assert b"sk-never-logged" not in stderr and b"Traceback" not in stderr


@contextlib.asynccontextmanager
async def two_replicas(tmp_path: Path) -> AsyncIterator[tuple[router_pb2_grpc.RouterServiceStub, ...]]:
    """Two router processes on one accounts file and one Redis namespace, and a stub for each; both stopped, and
    the namespace's keys deleted, afterwards."""
    async with fresh_namespace() as namespace:
        ports = [free_port() for _ in range(2)]
        procs = [await start(tmp_path, port, -1, redis_url=REDIS_URL, redis_namespace=namespace) for port in ports]
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as one, \
                    grpc.aio.insecure_channel(f"127.0.0.1:{ports[1]}") as two:
                await asyncio.wait_for(asyncio.gather(one.channel_ready(), two.channel_ready()), timeout=15)
                yield router_pb2_grpc.RouterServiceStub(one), router_pb2_grpc.RouterServiceStub(two)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                await asyncio.wait_for(proc.wait(), timeout=15)


async def test_two_router_processes_share_holds_and_windows_through_redis(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml", [account("first", priority=1), account("second", priority=2)])
    async with two_replicas(tmp_path) as (a, b):
        ask = router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4-5")
        lease = await a.Pick(ask, timeout=5)
        assert lease.account.name == "first"
        # Replica one hears of a 429 on "first"; replica two stops handing it out within 2 s.
        await a.ReportOutcome(router_pb2.ReportOutcomeRequest(
            lease_id=lease.lease_id, account_id=lease.account.id, outcome=router_pb2.OUTCOME_RATE_LIMITED,
            status_code=429, upstream_headers={"retry-after": "60"}, model="claude-sonnet-4-5"), timeout=5)
        names = []
        for _ in range(40):
            reply = await b.Pick(ask, timeout=5)
            await b.Release(router_pb2.ReleaseRequest(lease_id=reply.lease_id), timeout=5)
            names.append(reply.account.name)
            if reply.account.name == "second":
                break
            await asyncio.sleep(0.05)
        assert names[-1] == "second"


async def test_two_router_processes_share_slots_windows_and_sessions_through_redis(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml",
                   [account("capped", priority=1, max_concurrency=1), account("spare", priority=2)])
    async with two_replicas(tmp_path) as (a, b):
        ask = router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4-5", key_id="k")

        # Concurrency: replica one holds "capped"'s only slot; replica two, at once, hands out "spare".
        held = await a.Pick(ask, timeout=5)
        assert held.account.name == "capped"
        conversation = router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4-5",
                                              key_id="k", session_hint="conversation-1")
        other = await b.Pick(conversation, timeout=5)
        assert other.account.name == "spare"

        # The slot comes back through replica one; replica two may use "capped" again within 2 s.
        await a.Release(router_pb2.ReleaseRequest(lease_id=held.lease_id), timeout=5)
        names = []
        for _ in range(40):
            reply = await b.Pick(ask, timeout=5)
            await b.Release(router_pb2.ReleaseRequest(lease_id=reply.lease_id), timeout=5)
            names.append(reply.account.name)
            if reply.account.name == "capped":
                break
            await asyncio.sleep(0.05)
        assert names[-1] == "capped"

        # Stickiness: the conversation bound on replica two stays on "spare" when it reaches replica one,
        # though "capped" ranks first and is free.
        again = await a.Pick(conversation, timeout=5)
        assert again.account.name == "spare"
        await a.Release(router_pb2.ReleaseRequest(lease_id=again.lease_id), timeout=5)
        await b.Release(router_pb2.ReleaseRequest(lease_id=other.lease_id), timeout=5)

        # Windows: replica one reads "capped"'s 5-hour window at 97 % on a success; replica two steers away.
        served = await a.Pick(ask, timeout=5)
        assert served.account.name == "capped"
        reset = str(int(time.time()) + 3600)
        await a.ReportOutcome(router_pb2.ReportOutcomeRequest(
            lease_id=served.lease_id, account_id=served.account.id, outcome=router_pb2.OUTCOME_SUCCESS,
            status_code=200, model="claude-sonnet-4-5", upstream_headers={
                "anthropic-ratelimit-unified-5h-utilization": "0.97",
                "anthropic-ratelimit-unified-5h-reset": reset,
                "anthropic-ratelimit-unified-5h-status": "allowed"}), timeout=5)
        names = []
        for _ in range(40):
            reply = await b.Pick(ask, timeout=5)
            await b.Release(router_pb2.ReleaseRequest(lease_id=reply.lease_id), timeout=5)
            names.append(reply.account.name)
            if reply.account.name == "spare":
                break
            await asyncio.sleep(0.05)
        assert names[-1] == "spare"
        listed = await b.ListAccounts(router_pb2.ListAccountsRequest(), timeout=5)
        (window,) = next(s for s in listed.accounts if s.account.name == "capped").windows
        assert (window.name, round(window.utilization, 2)) == ("5h", 0.97)


async def test_an_account_upserted_on_one_replica_is_served_by_the_other_within_2_seconds(tmp_path: Path) -> None:
    write_accounts(tmp_path / "accounts.yaml", [])
    async with two_replicas(tmp_path) as (a, b):
        ask = router_pb2.PickRequest(platforms=["claude-console"], model="claude-sonnet-4-5")
        assert (await b.Pick(ask, timeout=5)).status == router_pb2.PICK_STATUS_NO_MODEL

        spec = json.dumps(account("managed"))
        await a.UpsertAccount(router_pb2.UpsertAccountRequest(spec_json=spec), timeout=5)
        upserted = time.monotonic()
        while (reply := await b.Pick(ask, timeout=5)).status != router_pb2.PICK_STATUS_OK:
            assert time.monotonic() - upserted < 2.0, "replica two did not serve the account within 2 s"
            await asyncio.sleep(0.05)
        assert reply.account.id == "claude-console/managed"
        await b.Release(router_pb2.ReleaseRequest(lease_id=reply.lease_id), timeout=5)

        await b.DeleteAccount(router_pb2.DeleteAccountRequest(account_id="claude-console/managed"), timeout=5)
        deleted = time.monotonic()
        while (await a.Pick(ask, timeout=5)).status == router_pb2.PICK_STATUS_OK:
            assert time.monotonic() - deleted < 2.0, "replica one kept serving a deleted account"
            await asyncio.sleep(0.05)
