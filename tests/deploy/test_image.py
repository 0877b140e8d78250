"""The image every service runs from: what the Dockerfile builds, checked without building it (no Docker
build runs in the test suite), and `make images`."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CHART_VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "switchboard" / "values.yaml").read_text())


def final_stage() -> str:
    return DOCKERFILE.rsplit("\nFROM ", 1)[1]


def test_the_image_runs_as_the_user_the_chart_expects() -> None:
    (user,) = re.findall(r"^USER (\S+)$", final_stage(), re.M)
    pod = CHART_VALUES["podSecurityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    assert "useradd --system --uid 65532 --gid 65532" in final_stage()


def test_the_stubs_are_generated_as_the_makefile_generates_them() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (make_line,) = re.findall(r"-m grpc_tools\.protoc (.*) \$\(PROTOS\)", makefile)
    assert f"-m grpc_tools.protoc {make_line} \\" in DOCKERFILE
    for step in ("find gen -type d -exec touch {}/__init__.py \\;", "rm -f gen/__init__.py"):
        assert step in makefile and step in DOCKERFILE


def test_every_package_directory_is_copied_into_the_build() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheres = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    copied = set(re.findall(r"^COPY (\S+)/ ", DOCKERFILE, re.M))
    tops = {where.split("/")[0] for where in wheres} - {"gen"}  # gen/ is generated in the build
    assert tops <= copied
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert not (copied | {"requirements.lock", "pyproject.toml"}) & ignored


@pytest.mark.parametrize("module", ["switchboard_edge", "switchboard_auth", "switchboard_router",
                                    "switchboard_operator"])
def test_each_service_command_is_a_runnable_module(module: str) -> None:
    mains = list(ROOT.glob(f"*/{module}/__main__.py")) + list(ROOT.glob(f"*/*/{module}/__main__.py"))
    assert len(mains) == 1


def test_make_images_skips_politely_without_docker() -> None:
    done = subprocess.run(["make", "--no-print-directory", "images", "DOCKER=/nonexistent/docker"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "make images: skipped, Docker is not available here" in done.stdout


def test_make_images_builds_with_docker(tmp_path: Path) -> None:
    """A stand-in `docker` that answers `info` and records its arguments: the target builds the root
    Dockerfile under IMAGE."""
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    docker.chmod(0o755)
    done = subprocess.run(["make", "--no-print-directory", "images", f"DOCKER={docker}", "IMAGE=sb:test"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["info", "build -t sb:test ."]


def _runtime_distributions() -> set[str]:
    """The project's runtime dependencies (pyproject `dependencies`, not the dev extra) and theirs."""
    from importlib import metadata

    from packaging.requirements import Requirement

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pending = list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    seen: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name, extras = canonical(requirement.name), requirement.extras
        if (name, frozenset(extras)) in visited:
            continue
        visited.add((name, frozenset(extras)))
        seen.add(name)
        for sub in metadata.requires(requirement.name) or []:
            parsed = Requirement(sub)
            if parsed.marker is None or any(parsed.marker.evaluate({"extra": e}) for e in ("", *extras)):
                parsed.marker = None  # decided here, for the extras of the requirement that brought it
                pending.append(str(parsed))
    return seen


def test_every_module_the_services_import_comes_with_a_runtime_dependency() -> None:
    """The image installs only the runtime dependencies: an import served by a dev-only package (or by none)
    would work in the test venv and crash in the cluster."""
    import ast
    import sys
    from importlib import metadata

    roots = [*sorted((ROOT / "services").glob("*/switchboard_*")), *sorted((ROOT / "operator").glob("switchboard_*"))]
    imported: dict[str, str] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and not top.startswith("switchboard"):
                        imported.setdefault(top, str(path.relative_to(ROOT)))
    assert "grpc" in imported and "prometheus_client" in imported  # the walk found the services' imports
    providers = metadata.packages_distributions()
    runtime = _runtime_distributions()
    missing = {}
    for module, where in sorted(imported.items()):
        distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [])}
        if not distributions & runtime:
            missing[module] = f"{where} (installed by {sorted(distributions) or 'nothing'})"
    assert missing == {}
