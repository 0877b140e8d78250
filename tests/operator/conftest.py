"""The operator end to end: the real stack (simulator, auth, router, edge as processes), an API server (kmock, or
the cluster KUBECONFIG names when it is set) and the real kopf operator running in-process against both."""

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import kmock
import kopf
import pytest

from switchboard_operator.handlers import Operator
from switchboard_operator.router_client import RouterClient
from switchboard_operator.settings import OperatorSettings
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

from .operator_testing import Api, crd, eventually, unique

REAL_CLUSTER = bool(os.environ.get("KUBECONFIG"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No accounts in the file: every account comes from an UpstreamAccount."""
    env = {"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "0.2", "SWITCHBOARD_ROUTER_RELOAD_INTERVAL_SECONDS": "0.2"}
    with Stack(tmp_path_factory.mktemp("stack"), Ports.free(), accounts=[], env=env) as running:
        yield running


@pytest.fixture(scope="module")
def client_key(stack: Stack) -> str:
    return create_demo_key(stack.db_path, "operator-e2e")


@dataclass
class Cluster:
    api: Api
    info: kopf.ConnectionInfo
    namespace: str
    emulator: kmock.KubernetesEmulator | None  # None: a real cluster


def _register(emulator: kmock.KubernetesEmulator, namespace: str) -> None:
    """What kopf discovers and lists before it watches: the CRD, namespaces, Secrets, UpstreamAccounts."""
    verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
    definition = crd()
    emulator.resources["switchboard.dev/v1alpha1/upstreamaccounts"] = kmock.ResourceInfo(
        kind="UpstreamAccount", singular="upstreamaccount", namespaced=True, verbs=verbs,
        shortnames=set(definition["spec"]["names"]["shortNames"]), subresources={"status"})
    emulator.resources["v1/secrets"] = kmock.ResourceInfo(kind="Secret", singular="secret", namespaced=True,
                                                          verbs=verbs)
    emulator.resources["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", singular="namespace",
                                                             namespaced=False, verbs=verbs)
    emulator.resources["v1/events"] = kmock.ResourceInfo(kind="Event", singular="event", namespaced=True,
                                                         verbs=verbs)
    emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
        kind="CustomResourceDefinition", singular="customresourcedefinition", namespaced=False, verbs=verbs)
    emulator.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None, definition["metadata"]["name"]] = \
        definition
    emulator.objects["v1/namespaces", None, namespace] = {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}


async def _install_crd(api: Api) -> None:
    """A real cluster: the CRD as this checkout has it (created, or replaced), then Established."""
    definition = crd()
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    current = await api.get(f"{path}/{definition['metadata']['name']}")
    if current is None:
        await api.create(path, definition)
    else:
        definition["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await api.call("PUT", f"{path}/{definition['metadata']['name']}", definition)

    async def established() -> None:
        got = await api.get(f"{path}/{definition['metadata']['name']}") or {}
        assert any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in got.get("status", {}).get("conditions", []))

    await eventually(established, what="the CRD is established")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    namespace = unique("sb-operator-test")
    if REAL_CLUSTER:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
        assert info is not None
        api = Api(info)
        await _install_crd(api)
        await api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": namespace}})
        try:
            yield Cluster(api, info, namespace, None)
        finally:
            await api.delete(f"/api/v1/namespaces/{namespace}")
            await api.close()
        return
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        _register(emulator, namespace)
        info = kopf.ConnectionInfo(server=str(emulator.url).rstrip("/"))
        api = Api(info, emulated=True)
        try:
            yield Cluster(api, info, namespace, emulator)
        finally:
            await api.close()


@pytest.fixture
def operator(cluster: Cluster, stack: Stack) -> Iterator[Operator]:
    """The real operator (every handler, kopf's own machinery) on an event loop of its own in a thread, as
    `kopf.testing.KopfRunner` runs it: on stopping, kopf cancels every task its loop started after it."""
    settings = OperatorSettings(router_target=f"127.0.0.1:{stack.ports.router}", status_interval_seconds=0.5,
                                max_backoff_seconds=2)
    running = Operator(settings)
    stop, ready = threading.Event(), threading.Event()
    # kmock 0.8 cannot parse GET /api/v1/namespaces (kopf lists namespaces to watch a named set of them): against
    # it the operator watches cluster-wide, which there is the test's namespace alone.
    scope = ({"clusterwide": True} if cluster.emulator is not None
             else {"clusterwide": False, "namespaces": [cluster.namespace]})
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(kopf.operator(registry=running.registry(login=lambda **_: cluster.info), standalone=True,
                                      stop_flag=stop, ready_flag=ready, **scope))
        except BaseException as exc:  # reported by the fixture's teardown
            failure.append(exc)

    thread = threading.Thread(target=run, name="kopf-operator", daemon=True)
    thread.start()
    assert ready.wait(timeout=30), f"the operator did not start: {failure}"
    try:
        yield running
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the operator did not stop"
        assert not failure, failure


@pytest.fixture
async def router(stack: Stack) -> AsyncIterator[RouterClient]:
    """The test's own view of the router (the operator's client lives on the operator's loop)."""
    client = RouterClient(f"127.0.0.1:{stack.ports.router}")
    yield client
    await client.close()


@pytest.fixture(autouse=True)
def _capture_operator_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every operator and kopf log line, debug ones too, so the tests can check no secret value is in them."""
    for name in ("kopf", "switchboard_operator"):
        caplog.set_level(logging.DEBUG, logger=name)
