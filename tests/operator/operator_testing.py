"""Shared by the operator tests: the CRD, a sample UpstreamAccount per platform, a small Kubernetes API client
(the same against kmock and a real cluster), and polling."""

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import kopf
import yaml

from switchboard_operator.kube import ssl_context

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "deploy/helm/switchboard/files/crds/upstreamaccounts.switchboard.dev.yaml"
UA_API = "/apis/switchboard.dev/v1alpha1"

T = TypeVar("T")


def crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return document


def schema() -> dict[str, Any]:
    version: dict[str, Any] = crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]


# One valid UpstreamAccount spec per platform, with the Secret data it needs (the README's examples).
SAMPLES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "claude-official": ({"platform": "claude-official", "credentialsSecretRef": {"name": "claude-max"},
                         "models": ["claude-*"], "priority": 10, "maxConcurrency": 4},
                        {"refresh_token": "rt-sample", "access_token": "at-sample", "expires_at": "4102444800"}),
    "claude-console": ({"platform": "claude-console", "credentialsSecretRef": {"name": "anthropic"},
                        "models": ["claude-*"], "modelMapping": {"claude-sonnet-4": "claude-sonnet-4-20250514"},
                        "weight": 3, "groups": ["team-a"], "timeoutSeconds": 600, "connectTimeoutSeconds": 10},
                       {"api_key": "sk-ant-sample"}),
    "claude-ccr": ({"platform": "claude-ccr", "baseUrl": "https://ccr.internal.example.com",
                    "credentialsSecretRef": {"name": "ccr"}, "proxyUrl": "socks5h://proxy.internal:1080"},
                   {"api_key": "sk-ccr-sample"}),
    "bedrock": ({"platform": "bedrock", "region": "us-east-1", "credentialsSecretRef": {"name": "aws"},
                 "models": ["claude-*", "anthropic.*"]},
                {"aws_access_key_id": "AKIASAMPLE", "aws_secret_access_key": "aws-secret-sample"}),
    "openai": ({"platform": "openai", "credentialsSecretRef": {"name": "openai"}, "models": ["gpt-*", "o*"],
                "organization": "org-sample", "project": "proj_sample"},
               {"api_key": "sk-openai-sample"}),
    "azure-openai": ({"platform": "azure-openai", "baseUrl": "https://myres.openai.azure.com",
                      "credentialsSecretRef": {"name": "azure"}, "apiVersion": "2024-10-21",
                      "deployments": {"gpt-4o*": "gpt4o-prod"}, "models": ["gpt-4o*"]},
                     {"api_key": "azure-key-sample"}),
    "gemini": ({"platform": "gemini", "credentialsSecretRef": {"name": "gemini"}, "models": ["gemini-*"],
                "enabled": True, "schedulable": False},
               {"api_key": "gemini-key-sample"}),
    "openai-responses": ({"platform": "openai-responses", "baseUrl": "https://chatgpt.com/backend-api/codex",
                          "credentialsSecretRef": {"name": "codex"}, "models": ["gpt-5*", "codex-*"]},
                         {"refresh_token": "rt-codex-sample",
                          "account_id": "7f6b2a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}),
}


def upstream_account(name: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "switchboard.dev/v1alpha1", "kind": "UpstreamAccount",
            "metadata": {"name": name, "namespace": namespace}, "spec": dict(spec)}


def secret(name: str, namespace: str, values: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30.0, what: str = "") -> T:
    """Calls `check` until it returns without an AssertionError; a bound for the test, not a timing claim."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > deadline:
                raise AssertionError(f"not so within {timeout} s: {what}") from None
        await asyncio.sleep(0.1)


class Api:
    """A few REST calls against the API server in `info` (kmock or a real cluster)."""

    def __init__(self, info: kopf.ConnectionInfo, *, emulated: bool = False) -> None:
        # kmock keeps objects as given: what a real API server adds on create is added here.
        self.emulated = emulated
        headers = {"Authorization": f"{info.scheme or 'Bearer'} {info.token}"} if info.token else {}
        self.server = info.server.rstrip("/")
        self.session = aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=ssl_context(info)))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (),
                   content_type: str = "application/json") -> dict[str, Any]:
        async with self.session.request(method, self.server + path, json=body,
                                        headers={"Content-Type": content_type}) as response:
            if response.status >= 400 and response.status not in ok:
                raise AssertionError(f"{method} {path}: HTTP {response.status}: {(await response.text())[:500]}")
            if response.status in ok:
                return {}
            data: dict[str, Any] = await response.json()
            return data

    async def get(self, path: str) -> dict[str, Any] | None:
        async with self.session.get(self.server + path) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            data: dict[str, Any] = await response.json()
            return data

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(body)
        if self.emulated:
            body["metadata"] = {**body["metadata"], "uid": str(uuid.uuid4()), "resourceVersion": "1",
                                "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"}
        return await self.call("POST", path, body)

    async def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("PATCH", path, dict(body), content_type="application/merge-patch+json")

    async def delete(self, path: str) -> None:
        await self.call("DELETE", path, ok=(404,))


def ua_path(namespace: str, name: str = "") -> str:
    return f"{UA_API}/namespaces/{namespace}/upstreamaccounts" + (f"/{name}" if name else "")


def secret_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")
