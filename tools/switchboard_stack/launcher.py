"""Start simulator, auth, router and edge as child processes, wait until ready, stop them all.

Every process gets its settings through SWITCHBOARD_* environment variables,
exactly as in a container; nothing is imported across service boundaries.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from switchboard_stack.ports import free_port

SIMULATOR_ANTHROPIC_KEY = "sk-sim-anthropic"
SIMULATOR_OPENAI_KEY = "sk-sim-openai"


@dataclass(frozen=True)
class Ports:
    edge: int = 8080
    auth: int = 50051
    router: int = 50052
    simulator: int = 8090
    edge_metrics: int = 9100
    auth_metrics: int = 9101
    router_metrics: int = 9102

    @classmethod
    def free(cls) -> "Ports":
        return cls(*(free_port() for _ in range(7)))


def demo_accounts(simulator_url: str) -> list[dict[str, Any]]:
    """Accounts that point at the built-in simulator."""
    return [
        {
            "name": "simulator-claude",
            "platform": "claude-console",
            "base_url": simulator_url,
            "api_key": SIMULATOR_ANTHROPIC_KEY,
            "models": ["claude-*"],
        },
        {
            "name": "simulator-openai",
            "platform": "openai",
            "base_url": simulator_url,
            "api_key": SIMULATOR_OPENAI_KEY,
            "models": ["gpt-*", "o*"],
        },
    ]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None

    def tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """The four processes of a local Switchboard. Use as a context manager or call start/stop."""

    workdir: Path
    ports: Ports = field(default_factory=Ports)
    accounts: Sequence[Mapping[str, Any]] | None = None
    simulator_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Write each process's output to <workdir>/<name>.log instead of the terminal.
    log_to_files: bool = True
    processes: list[Process] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.edge}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.simulator}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "switchboard.db"

    @property
    def accounts_path(self) -> Path:
        return self.workdir / "accounts.yaml"

    def write_accounts(self, accounts: Sequence[Mapping[str, Any]]) -> None:
        temporary = self.accounts_path.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump({"accounts": [dict(a) for a in accounts]}, sort_keys=False))
        temporary.replace(self.accounts_path)

    def environment(self) -> dict[str, str]:
        ports = self.ports
        env = dict(os.environ)
        env.update({
            "SWITCHBOARD_AUTH_LISTEN": f"127.0.0.1:{ports.auth}",
            "SWITCHBOARD_AUTH_METRICS_PORT": str(ports.auth_metrics),
            "SWITCHBOARD_AUTH_DB_PATH": str(self.db_path),
            "SWITCHBOARD_ROUTER_LISTEN": f"127.0.0.1:{ports.router}",
            "SWITCHBOARD_ROUTER_METRICS_PORT": str(ports.router_metrics),
            "SWITCHBOARD_ROUTER_ACCOUNTS_FILE": str(self.accounts_path),
            "SWITCHBOARD_EDGE_HOST": "127.0.0.1",
            "SWITCHBOARD_EDGE_PORT": str(ports.edge),
            "SWITCHBOARD_EDGE_METRICS_PORT": str(ports.edge_metrics),
            "SWITCHBOARD_EDGE_AUTH_TARGET": f"127.0.0.1:{ports.auth}",
            "SWITCHBOARD_EDGE_ROUTER_TARGET": f"127.0.0.1:{ports.router}",
        })
        env.update(self.env)
        return env

    def start(self, timeout: float = 30.0) -> "Stack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.accounts_path.exists() or self.accounts is not None:
            self.write_accounts(self.accounts if self.accounts is not None else demo_accounts(self.simulator_url))
        env = self.environment()
        simulator = ["--host", "127.0.0.1", "--port", str(self.ports.simulator), *self.simulator_args]
        self._spawn("simulator", ["-m", "switchboard_simulator", *simulator], env)
        self._spawn("auth", ["-m", "switchboard_auth"], env)
        self._spawn("router", ["-m", "switchboard_router"], env)
        self._spawn("edge", ["-m", "switchboard_edge"], env)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log_path = self.workdir / f"{name}.log" if self.log_to_files else None
        output: IO[bytes] | None = open(log_path, "wb") if log_path else None  # noqa: SIM115 - owned by child
        popen = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=output or None,
            stderr=subprocess.STDOUT if output else None,
            stdin=subprocess.DEVNULL,
            # Ctrl-C reaches only the launcher, which then stops the children in order.
            start_new_session=True,
        )
        if output:
            output.close()
        self.processes.append(Process(name, popen, log_path))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        checks = [f"{self.simulator_url}/healthz", f"{self.base_url}/readyz"]
        with httpx.Client(timeout=1.0) as client:
            while checks:
                for process in self.processes:
                    if process.popen.poll() is not None:
                        raise RuntimeError(
                            f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                        )
                try:
                    if client.get(checks[0]).status_code == 200:
                        checks.pop(0)
                        continue
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout}s: {checks[0]}")
                time.sleep(0.05)

    def stop(self, grace: float = 10.0) -> None:
        """Edge first, so it can hand its last usage and outcome reports to auth and router; then the rest."""
        edge = [process for process in self.processes if process.name == "edge"]
        rest = [process for process in reversed(self.processes) if process.name != "edge"]
        for group in (edge, rest):
            for process in group:
                if process.popen.poll() is None:
                    process.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for process in group:
                try:
                    process.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait()
        self.processes.clear()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
