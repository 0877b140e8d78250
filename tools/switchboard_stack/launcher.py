"""Start simulator, auth, router and edge as child processes, wait until ready, stop them all.

Every process gets its settings through SWITCHBOARD_* environment variables,
exactly as in a container; nothing is imported across service boundaries.
Nothing starts unless every port can be bound, and on Linux the children die
with the launcher even when it is SIGKILLed (PR_SET_PDEATHSIG).
"""

import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO

import httpx
import yaml

from switchboard_simulator import defaults
from switchboard_stack.ports import Ports

__all__ = [
    "SIMULATOR_ANTHROPIC_KEY", "SIMULATOR_OPENAI_KEY", "ChildExited", "Ports", "PortsUnavailable", "Process",
    "Stack", "StartupFailed", "demo_accounts",
]

SIMULATOR_ANTHROPIC_KEY = "sk-sim-anthropic"
SIMULATOR_OPENAI_KEY = "sk-sim-openai"
PR_SET_PDEATHSIG = 1


class StartupFailed(RuntimeError):
    """The stack could not be started; nothing of it is left running."""


class PortsUnavailable(StartupFailed):
    """Some port cannot be bound; one line per port, each naming the variable that moves it."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class ChildExited(StartupFailed):
    """A child process exited before the stack was ready."""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    except OSError:
        return None


def _die_with_this_thread() -> Callable[[], None] | None:
    """A preexec_fn that has Linux SIGTERM the child when the calling thread ends, even by SIGKILL.

    Linux sends the signal when the *thread* that forked exits, so this is only used from the main
    thread; elsewhere (and off Linux) it returns None and the children outlive a killed launcher.
    """
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before the request took effect
            os._exit(1)

    return preexec


def demo_accounts(simulator_url: str) -> list[dict[str, Any]]:
    """One account per platform, all pointing at the built-in simulator with the credentials it accepts."""
    return [
        {"name": "simulator-claude-official", "platform": "claude-official", "base_url": simulator_url,
         "oauth": {"refresh_token": defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN}, "models": ["claude-*"]},
        {"name": "simulator-claude", "platform": "claude-console", "base_url": simulator_url,
         "api_key": SIMULATOR_ANTHROPIC_KEY, "models": ["claude-*"]},
        {"name": "simulator-claude-ccr", "platform": "claude-ccr", "base_url": simulator_url,
         "api_key": SIMULATOR_ANTHROPIC_KEY, "models": ["claude-*"]},
        {"name": "simulator-bedrock", "platform": "bedrock", "base_url": simulator_url,
         "region": defaults.BEDROCK_REGION, "models": ["claude-*", "anthropic.*", "us.anthropic.*"],
         "aws": {"access_key_id": defaults.BEDROCK_ACCESS_KEY_ID,
                 "secret_access_key": defaults.BEDROCK_SECRET_ACCESS_KEY}},
        {"name": "simulator-openai", "platform": "openai", "base_url": simulator_url,
         "api_key": SIMULATOR_OPENAI_KEY, "models": ["gpt-*", "o*"]},
        {"name": "simulator-azure", "platform": "azure-openai", "base_url": simulator_url,
         "api_key": defaults.AZURE_OPENAI_KEY, "api_version": defaults.AZURE_OPENAI_API_VERSION,
         "models": sorted(defaults.AZURE_OPENAI_DEPLOYMENTS)},
        # Gemini's API, covering Gemini CLI's default models (and its routing classifier's).
        {"name": "simulator-gemini", "platform": "gemini", "base_url": simulator_url,
         "api_key": defaults.GEMINI_KEY, "models": ["gemini-*"]},
        # openai-responses with an API key (OpenAI's /v1/responses) ...
        {"name": "simulator-openai-responses", "platform": "openai-responses", "base_url": simulator_url,
         "api_key": SIMULATOR_OPENAI_KEY, "models": ["gpt-*", "codex-*", "o*"]},
        # ... and signed in with ChatGPT (the Codex backend); both serve Codex CLI's default models.
        {"name": "simulator-codex", "platform": "openai-responses", "base_url": f"{simulator_url}/backend-api/codex",
         "oauth": {"refresh_token": defaults.CODEX_OAUTH_REFRESH_TOKEN, "account_id": defaults.CODEX_ACCOUNT_ID},
         "models": ["gpt-5*", "gpt-6*", "codex-*"]},
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


class _LogEcho:
    """Copies what the children write to their log files onto a stream, line by line, prefixed with their name."""

    def __init__(self, processes: Sequence[Process], out: TextIO) -> None:
        width = max(len(process.name) for process in processes)
        self._sources: list[tuple[str, BinaryIO]] = [
            (f"{process.name:<{width}} | ", open(process.log_path, "rb"))  # noqa: SIM115 - closed in stop
            for process in processes if process.log_path is not None
        ]
        self._pending = [b""] * len(self._sources)
        self._out = out
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-echo", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(0.1):
            self._pump(final=False)

    def _pump(self, final: bool) -> None:
        for index, (prefix, source) in enumerate(self._sources):
            *lines, self._pending[index] = (self._pending[index] + source.read()).split(b"\n")
            if final and self._pending[index]:
                lines.append(self._pending[index])
            text = "".join(f"{prefix}{line.decode(errors='replace')}\n" for line in lines)
            if text:
                try:
                    self._out.write(text)
                    self._out.flush()
                except (OSError, ValueError):  # the terminal went away
                    pass

    def stop(self) -> None:
        """Copies what is left and closes the files."""
        self._stopped.set()
        self._thread.join()
        self._pump(final=True)
        for _, source in self._sources:
            source.close()


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
    # Also copy those log lines here as they are written, prefixed with the process name (`make run`).
    echo_logs: TextIO | None = None
    processes: list[Process] = field(default_factory=list)
    _echo: _LogEcho | None = field(default=None, init=False, repr=False)

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
            "SWITCHBOARD_EDGE_SPOOL_DIR": str(self.workdir / "edge-spool"),
            # claude-official demo accounts sign in at the simulator's token endpoint.
            "SWITCHBOARD_EDGE_OAUTH_TOKEN_URL": f"{self.simulator_url}/v1/oauth/token",
            # ChatGPT-signed-in (Codex backend) demo accounts at the simulator's auth.openai.com.
            "SWITCHBOARD_EDGE_CODEX_OAUTH_TOKEN_URL": f"{self.simulator_url}/oauth/token",
        })
        env.update(self.env)
        return env

    def start(self, timeout: float = 30.0) -> "Stack":
        """Starts the four processes and waits until they serve.

        Raises PortsUnavailable (before starting anything), ChildExited or TimeoutError; on any
        failure whatever was started is stopped again.
        """
        problems = self.ports.problems()
        if problems:
            raise PortsUnavailable(problems)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.accounts_path.exists() or self.accounts is not None:
            self.write_accounts(self.accounts if self.accounts is not None else demo_accounts(self.simulator_url))
            # Credentials the router stored for the previous accounts (rotated OAuth tokens) belong to them.
            Path(f"{self.accounts_path}.credentials.json").unlink(missing_ok=True)
        env = self.environment()
        simulator = ["--host", "127.0.0.1", "--port", str(self.ports.simulator), *self.simulator_args]
        try:
            self._spawn("simulator", ["-m", "switchboard_simulator", *simulator], env)
            self._spawn("auth", ["-m", "switchboard_auth"], env)
            self._spawn("router", ["-m", "switchboard_router"], env)
            self._spawn("edge", ["-m", "switchboard_edge"], env)
            if self.echo_logs is not None and self.log_to_files:
                self._echo = _LogEcho(self.processes, self.echo_logs)
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
            # A launcher that dies without stopping them (SIGKILL) still takes them along.
            preexec_fn=_die_with_this_thread(),
        )
        if output:
            output.close()
        self.processes.append(Process(name, popen, log_path))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        checks = [f"{self.simulator_url}/healthz", f"{self.base_url}/readyz"]
        with httpx.Client(timeout=1.0) as client:
            while True:
                self._raise_if_one_exited()
                if not checks:
                    return
                try:
                    if client.get(checks[0]).status_code == 200:
                        checks.pop(0)
                        continue
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout}s: {checks[0]}")
                time.sleep(0.05)

    def _raise_if_one_exited(self) -> None:
        for process in self.processes:
            code = process.popen.poll()
            if code is not None:
                message = f"{process.name} exited with status {code} during start-up"
                tail = process.tail()
                if tail:
                    message += f"; the end of {process.log_path}:\n{tail}"
                raise ChildExited(message)

    def stop(self, grace: float = 10.0) -> None:
        """Edge first, so it can hand its last usage and outcome reports to auth and router; then the rest.

        The edge gets its drain time (SWITCHBOARD_EDGE_DRAIN_SECONDS, open streams finish or end properly)
        on top of `grace`.
        """
        edge = [process for process in self.processes if process.name == "edge"]
        rest = [process for process in reversed(self.processes) if process.name != "edge"]
        drain = float(self.environment().get("SWITCHBOARD_EDGE_DRAIN_SECONDS", "60"))
        for group, wait in ((edge, drain + grace), (rest, grace)):
            for process in group:
                if process.popen.poll() is None:
                    process.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + wait
            for process in group:
                try:
                    process.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait()
        self.processes.clear()
        if self._echo is not None:
            self._echo.stop()
            self._echo = None

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
