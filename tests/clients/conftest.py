"""Fixtures for the tests with the real coding CLIs: each installed from npm once into a cache outside the repo,
and each run's wall time collected, written to client-timings.json and shown in the terminal summary."""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .npm_cache import CLIENTS, NpmInstallFailed, install

InstallClient = Callable[[str], Path]
RecordTiming = Callable[[Mapping[str, Any]], None]

_TIMINGS: list[dict[str, Any]] = []
_TIMINGS_FILE: list[Path] = []


@pytest.fixture(scope="session")
def install_client() -> InstallClient:
    """Returns the path of a pinned CLI's binary ("claude", "codex", "gemini"), installing it if needed.

    An install that fails fails the test, with npm's output: a missing client is never a reason to skip.
    """

    def install_one(name: str) -> Path:
        client = CLIENTS[name]
        try:
            return install(client.package, client.version, client.binary)
        except NpmInstallFailed as exc:
            pytest.fail(f"installing {client.spec} failed:\n{exc}", pytrace=False)

    return install_one


@pytest.fixture(scope="session")
def record_timing(tmp_path_factory: pytest.TempPathFactory) -> RecordTiming:
    """Keeps one run's timing entry: in <pytest base temp>/client-timings.json and in the terminal summary."""
    path = tmp_path_factory.getbasetemp() / "client-timings.json"

    def record(entry: Mapping[str, Any]) -> None:
        _TIMINGS.append(dict(entry))
        path.write_text(json.dumps(_TIMINGS, indent=2) + "\n")
        if not _TIMINGS_FILE:
            _TIMINGS_FILE.append(path)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TIMINGS:
        return
    terminalreporter.section("real client turn times")
    for entry in _TIMINGS:
        details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("test", "seconds"))
        terminalreporter.write_line(f"{entry['seconds']:7.2f}s  {entry['test']}  ({details})")
    terminalreporter.write_line(f"(also in {_TIMINGS_FILE[0]})")
