"""`python -m switchboard_auth` as a real process: health, Authorize, metrics endpoint, clean SIGTERM."""

import asyncio
import signal
import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.keys import create_key
from switchboard_auth.sqlite_store import SqliteKeyStore

from .auth_testing import PEPPER, free_port, subprocess_env

SERVICE = "switchboard.auth.v1.AuthService"


async def wait_serving(health: health_pb2_grpc.HealthStub, proc: asyncio.subprocess.Process) -> None:
    for _ in range(100):
        assert proc.returncode is None, "auth exited during start"
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("auth never reported SERVING")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


async def test_service_process_serves_health_authorize_and_metrics_then_stops_on_sigterm(tmp_path: Path) -> None:
    db_path = tmp_path / "auth.db"
    store = await SqliteKeyStore.open(str(db_path))
    plaintext, _ = await create_key(store, "boot", pepper=PEPPER, platforms=["openai"])
    await store.close()
    grpc_port, metrics_port = free_port(), free_port()
    env = subprocess_env(
        SWITCHBOARD_AUTH_LISTEN=f"127.0.0.1:{grpc_port}",
        SWITCHBOARD_AUTH_METRICS_PORT=str(metrics_port),
        SWITCHBOARD_AUTH_DB_PATH=str(db_path),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard_auth", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await wait_serving(health, proc)
            overall = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            assert overall.status == health_pb2.HealthCheckResponse.SERVING

            stub = auth_pb2_grpc.AuthServiceStub(channel)
            allowed = await stub.Authorize(
                auth_pb2.AuthorizeRequest(credential=plaintext, platforms=["gemini", "openai"], model="m"), timeout=5
            )
            assert allowed.decision == auth_pb2.DECISION_ALLOW
            assert list(allowed.allowed_platforms) == ["openai"]
            denied = await stub.Authorize(auth_pb2.AuthorizeRequest(credential="sk-sb-nope"), timeout=5)
            assert denied.reason == auth_pb2.REASON_KEY_INVALID

        metrics = await asyncio.to_thread(scrape, metrics_port)
        assert 'switchboard_auth_decisions_total{decision="allow",reason="ok"} 1.0' in metrics
        assert 'switchboard_auth_decisions_total{decision="deny",reason="key_invalid"} 1.0' in metrics
        assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="Authorize"' in metrics
        assert plaintext not in metrics

        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
        assert proc.returncode == 0, stderr.decode()
        assert plaintext not in stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
