"""One real stack (simulator, auth, router, edge as processes on free ports) for the end-to-end tests."""

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY, Ports, Stack
from switchboard_stack.ports import free_port

MAX_BODY = 256 * 1024


class Keys:
    def __init__(self, full: str, openai_only: str, disabled: str, expired: str) -> None:
        self.full, self.openai_only, self.disabled, self.expired = full, openai_only, disabled, expired


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    ports = Ports.free()
    simulator = f"http://127.0.0.1:{ports.simulator}"
    accounts = [
        {"name": "sim-claude", "platform": "claude-console", "base_url": simulator,
         "api_key": SIMULATOR_ANTHROPIC_KEY, "models": ["claude-*"],
         "model_mapping": {"claude-alias": "claude-sonnet-4-20250514"}},
        {"name": "sim-openai", "platform": "openai", "base_url": simulator, "api_key": SIMULATOR_OPENAI_KEY,
         "models": ["gpt-*"]},
        # Nothing listens on this port: connection refused.
        {"name": "dead", "platform": "claude-ccr", "base_url": f"http://127.0.0.1:{free_port()}",
         "api_key": "sk-unused", "models": ["dead-*"]},
        # The simulator answers 500 for this key.
        {"name": "broken", "platform": "openai", "base_url": simulator, "api_key": "sk-sim-broken",
         "models": ["broken-*"]},
        # Failover: the preferred account answers 500, the next one works.
        {"name": "flaky", "platform": "openai", "base_url": simulator, "api_key": "sk-sim-broken",
         "models": ["gpt-failover-*"], "priority": 10},
        {"name": "steady", "platform": "openai", "base_url": simulator, "api_key": SIMULATOR_OPENAI_KEY,
         "models": ["gpt-failover-*"], "priority": 20},
        # The simulator drops the connection mid-stream for this key.
        {"name": "cut", "platform": "claude-ccr", "base_url": simulator, "api_key": "sk-sim-disconnect",
         "models": ["claude-cut-*"], "priority": 1},
        # The simulator refuses this key: the account's own credential is wrong.
        {"name": "revoked", "platform": "claude-ccr", "base_url": simulator, "api_key": "sk-not-valid",
         "models": ["revoked-*"]},
    ]
    env = {
        "SWITCHBOARD_AUTH_DECISION_REUSE_SECONDS": "0.5",
        "SWITCHBOARD_AUTH_CACHE_TTL_SECONDS": "0.5",
        "SWITCHBOARD_EDGE_MAX_BODY_BYTES": str(MAX_BODY),
        "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2",
    }
    faults = ["--key-fault", "sk-sim-disconnect=disconnect:4"]
    with Stack(workdir, ports, accounts=accounts, simulator_args=faults, env=env) as running:
        yield running


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switchboard_auth.cli", "--db", str(stack.db_path), *args],
                          capture_output=True, text=True, check=True)


@pytest.fixture(scope="session")
def keys(stack: Stack) -> Keys:
    full = create_demo_key(stack.db_path, "e2e-full")
    openai_only = create_demo_key(stack.db_path, "e2e-openai-only", platforms=["openai"], models=["gpt-4o*"])
    disabled = create_demo_key(stack.db_path, "e2e-disabled")
    cli(stack, "keys", "disable", "e2e-disabled")
    expired = create_demo_key(stack.db_path, "e2e-expired", expires_at=datetime.now(UTC) + timedelta(seconds=1))
    time.sleep(1.1)
    return Keys(full, openai_only, disabled, expired)


@pytest.fixture()
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        yield client


@pytest.fixture()
def upstream(stack: Stack) -> Iterator[httpx.Client]:
    """The simulator's record of what the gateway sent it."""
    with httpx.Client(base_url=stack.simulator_url, timeout=10) as client:
        client.delete("/_simulator/requests")
        yield client


