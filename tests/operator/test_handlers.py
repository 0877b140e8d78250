"""The handlers with a fake router and a fake Kubernetes: retries, refusals, deletion, rotation while the router is
down. (The end-to-end tests run them in kopf against kmock and the real stack.)"""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import grpc
import kopf
import pytest

from switchboard_operator.builder import encode_secret
from switchboard_operator.conditions import Live
from switchboard_operator.handlers import Operator
from switchboard_operator.kube import SecretNotFound
from switchboard_operator.router_client import Listed
from switchboard_operator.settings import OperatorSettings

LOG = logging.getLogger("test")
SPEC = {"platform": "openai", "credentialsSecretRef": {"name": "key"}, "models": ["gpt-*"]}
ACCOUNT = "openai/ns.a"


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeRouter:
    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.failure: grpc.aio.AioRpcError | None = None
        self.stored: dict[str, tuple[str, Mapping[str, str]]] = {}

    async def upsert(self, spec: Mapping[str, Any]) -> Live:
        if self.failure is not None:
            raise self.failure
        self.accounts[f"{spec['platform']}/{spec['name']}"] = dict(spec)
        return Live("ready")

    async def delete(self, account_id: str) -> bool:
        if self.failure is not None:
            raise self.failure
        return self.accounts.pop(account_id, None) is not None

    async def list(self, platform: str = "") -> dict[str, Listed]:
        if self.failure is not None:
            raise self.failure
        return {i: Listed(Live("ready"), "managed", self.stored.get(i)) for i in self.accounts}

    async def close(self) -> None:
        pass


class FakeKube:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.patches: list[dict[str, str]] = []

    async def get_secret(self, namespace: str, name: str) -> Mapping[str, Any]:
        if (namespace, name) not in self.secrets:
            raise SecretNotFound(f"Secret {namespace}/{name} not found")
        return {"data": encode_secret(self.secrets[namespace, name])}

    async def patch_secret_data(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        self.patches.append(dict(data))


@pytest.fixture
def parts() -> tuple[Operator, FakeRouter, FakeKube]:
    router, kube = FakeRouter(), FakeKube()
    operator = Operator(OperatorSettings(max_backoff_seconds=8), router=router, kube=kube,
                        clock=lambda: datetime(2026, 11, 29, tzinfo=UTC))
    return operator, router, kube


def args(patch: kopf.Patch, status: Mapping[str, Any] | None = None, spec: Mapping[str, Any] = SPEC) -> dict[str, Any]:
    return {"spec": spec, "name": "a", "namespace": "ns", "meta": {"generation": 2}, "status": status or {},
            "patch": patch, "retry": 0, "logger": LOG}


def condition(patch: kopf.Patch, kind: str) -> dict[str, Any]:
    return next(c for c in patch["status"]["conditions"] if c["type"] == kind)


async def test_a_push_that_succeeds_writes_a_ready_status(parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    kube.secrets["ns", "key"] = {"api_key": "sk-value-1"}
    patch = kopf.Patch()
    await operator.reconcile(**args(patch))
    assert router.accounts[ACCOUNT]["api_key"] == "sk-value-1"
    assert condition(patch, "Ready")["status"] == "True" and patch["status"]["accountId"] == ACCOUNT


async def test_a_missing_secret_or_an_unreachable_router_is_retried_with_a_doubling_delay(
        parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError) as caught:
        await operator.reconcile(**{**args(patch), "retry": 2})
    assert caught.value.delay == 4 and condition(patch, "Error")["reason"] == "SecretMissing"
    kube.secrets["ns", "key"] = {"api_key": "sk-value-1"}
    router.failure = rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError) as caught:
        await operator.reconcile(**{**args(patch), "retry": 9})
    assert caught.value.delay == 8  # capped
    assert condition(patch, "Error")["reason"] == "RouterUnavailable"


async def test_a_refusal_is_permanent_until_something_changes(parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    kube.secrets["ns", "key"] = {"api_key": "sk-value-1"}
    router.failure = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "defined by the accounts file")
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError):
        await operator.reconcile(**args(patch))
    assert condition(patch, "Error")["reason"] == "RouterRefused"
    assert "accounts file" in patch["status"]["lastError"] and "sk-value-1" not in str(patch)


async def test_delete_removes_the_pushed_id_and_retries_only_what_may_pass(
        parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, _ = parts
    router.accounts[ACCOUNT] = {}
    await operator.remove(spec=SPEC, name="a", namespace="ns", status={"accountId": ACCOUNT}, retry=0, logger=LOG)
    assert ACCOUNT not in router.accounts
    await operator.remove(spec=SPEC, name="a", namespace="ns", status={}, retry=0, logger=LOG)  # already gone: fine
    router.failure = rpc_error(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(kopf.TemporaryError):
        await operator.remove(spec=SPEC, name="a", namespace="ns", status={}, retry=0, logger=LOG)
    router.failure = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "a file account")
    await operator.remove(spec=SPEC, name="a", namespace="ns", status={}, retry=0, logger=LOG)  # lets it go


async def test_a_secret_change_while_the_router_is_down_is_pushed_by_the_next_status_tick(
        parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    kube.secrets["ns", "key"] = {"api_key": "sk-value-1"}
    await operator.reconcile(**args(kopf.Patch()))
    index = {("ns", "key"): [{"name": "a", "spec": SPEC}]}
    rotated = {"data": encode_secret({"api_key": "sk-value-2"})}
    router.failure = rpc_error(grpc.StatusCode.UNAVAILABLE)
    await operator.secret_changed(type="MODIFIED", body=rotated, name="key", namespace="ns", logger=LOG,
                                  secret_refs=index)
    assert operator.stale == {("ns", "a")} and router.accounts[ACCOUNT]["api_key"] == "sk-value-1"
    router.failure = None
    kube.secrets["ns", "key"] = {"api_key": "sk-value-2"}
    patch = kopf.Patch()
    await operator.refresh(**args(patch))
    assert router.accounts[ACCOUNT]["api_key"] == "sk-value-2" and operator.stale == set()


async def test_a_secret_nobody_names_or_the_initial_listing_pushes_nothing(
        parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, _ = parts
    index = {("ns", "key"): [{"name": "a", "spec": SPEC}]}
    body = {"data": encode_secret({"api_key": "sk-value-1"})}
    await operator.secret_changed(type="MODIFIED", body=body, name="other", namespace="ns", logger=LOG,
                                  secret_refs=index)
    await operator.secret_changed(type=None, body=body, name="key", namespace="ns", logger=LOG, secret_refs=index)
    assert router.accounts == {}


async def test_the_timer_repushes_a_lost_account_and_writes_refreshed_tokens_back(
        parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    spec = {"platform": "claude-official", "credentialsSecretRef": {"name": "key"}}
    kube.secrets["ns", "key"] = {"refresh_token": "rt-1"}
    patch = kopf.Patch()
    await operator.refresh(**args(patch, spec=spec))  # the router lost it (restarted in memory)
    assert "claude-official/ns.a" in router.accounts and condition(patch, "Ready")["status"] == "True"
    router.stored["claude-official/ns.a"] = ("", {"refresh_token": "rt-2", "access_token": "at-2",
                                                  "expires_at": "1900000000"})
    await operator.refresh(**args(kopf.Patch(), spec=spec))
    assert kube.patches == [encode_secret({"refresh_token": "rt-2", "access_token": "at-2",
                                           "expires_at": "1900000000"})]


async def test_an_unchanged_status_is_not_patched(parts: tuple[Operator, FakeRouter, FakeKube]) -> None:
    operator, router, kube = parts
    kube.secrets["ns", "key"] = {"api_key": "sk-value-1"}
    first = kopf.Patch()
    await operator.reconcile(**args(first))
    again = kopf.Patch()
    await operator.refresh(**args(again, status=first["status"]))
    assert dict(again) == {}
