"""Helpers for the launcher tests: run `python -m switchboard_stack` and find the processes it started.

Every process of a stack inherits the launcher's environment, so the processes of one test are the
live ones whose environment holds that test's own SWITCHBOARD_RUN_DIR (found through /proc).
"""

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from switchboard_stack.ports import PORT_SETTINGS, Ports

if not Path("/proc/self/environ").exists():
    pytest.skip("needs /proc (Linux)", allow_module_level=True)

LAUNCHER = [sys.executable, "-m", "switchboard_stack"]


def launcher_env(run_dir: Path, ports: Ports, **extra: str) -> dict[str, str]:
    """The environment of `make run` with every port moved to `ports` and its state in `run_dir`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHBOARD_")}
    env.update({"PYTHONUNBUFFERED": "1", "SWITCHBOARD_RUN_DIR": str(run_dir)})
    env.update({variable: str(getattr(ports, name)) for name, (variable, _) in PORT_SETTINGS.items()})
    env.update(extra)
    return env


def processes_of(run_dir: Path) -> dict[int, str]:
    """Live processes (zombies excluded) started with SWITCHBOARD_RUN_DIR=run_dir: pid → command line."""
    marker = f"SWITCHBOARD_RUN_DIR={run_dir}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if marker in environ and state not in ("Z", "X"):
            found[int(entry.name)] = command.strip()
    return found


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Polls `condition` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.1)
    return True


class Lines:
    """Reads a child's text output on a thread, so a test can wait for a line without blocking forever."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once a line containing `text` arrived; False at end of output or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
