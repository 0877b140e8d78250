"""`python -m switchboard_operator` as a real process (settings from the environment, login from KUBECONFIG) against
kmock and the stack's router: it pushes an UpstreamAccount and stops cleanly on SIGTERM."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from switchboard_operator.router_client import RouterClient
from switchboard_stack.launcher import SIMULATOR_OPENAI_KEY, Stack

from .conftest import REAL_CLUSTER, Cluster
from .operator_testing import eventually, secret, secret_path, ua_path, upstream_account

pytestmark = pytest.mark.skipif(REAL_CLUSTER, reason="against kmock only (a cluster may run the real operator)")


async def test_the_entry_point_runs_the_operator(cluster: Cluster, stack: Stack, router: RouterClient,
                                                 tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": cluster.info.server}}],
        "users": [{"name": "kmock", "user": {}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
    }))
    ns, api = cluster.namespace, cluster.api
    await api.create(secret_path(ns), secret("openai", ns, {"api_key": SIMULATOR_OPENAI_KEY}))
    await api.create(ua_path(ns), upstream_account("proc", ns, {
        "platform": "openai", "baseUrl": stack.simulator_url, "credentialsSecretRef": {"name": "openai"}}))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "SWITCHBOARD_OPERATOR_ROUTER_TARGET": f"127.0.0.1:{stack.ports.router}",
           "SWITCHBOARD_OPERATOR_STATUS_INTERVAL_SECONDS": "0.5"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard_operator", env=env,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async def served() -> None:
            assert f"openai/{ns}.proc" in await router.list("openai")
            body = await api.get(ua_path(ns, "proc")) or {}
            ready = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            assert ready and ready[0]["status"] == "True"

        await eventually(served, what="the operator process pushed the account and wrote its status")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    log = stderr.decode()
    assert process.returncode == 0, log[-3000:]
    assert SIMULATOR_OPENAI_KEY not in log
    await api.delete(ua_path(ns, "proc"))  # no operator now: the finalizer stays, as in a cluster
