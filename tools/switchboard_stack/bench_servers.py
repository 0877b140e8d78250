"""The servers the bench starts besides the stack: extra simulators (paced ones, for the streaming and memory
scenarios), bare forwarders and, for `make bench-peers`, LiteLLM's proxy. Each runs on a free port until its
`with` block ends; its pid is kept so the bench can read its CPU and memory."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from switchboard_stack.ports import free_port


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def serve(name: str, command: Sequence[str], ready_url: str, env: Mapping[str, str] | None = None,
          timeout: float = 30.0, log: str | None = None) -> Iterator[int]:
    """Runs `command` until the block ends; yields its pid once `ready_url` answers 200. Output goes to the file
    `log` (else the terminal); a start that fails raises with what went wrong."""
    output = open(log, "wb") if log else None  # noqa: SIM115 - closed below, once the child has it
    process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT if
                               output else None, env=None if env is None else {**os.environ, **env},
                               start_new_session=True)
    if output:
        output.close()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode} during start-up"
                                   + (f" (its output: {log})" if log else ""))
            try:
                if httpx.get(ready_url, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is not ready after {timeout:.0f} s: {ready_url}")
            time.sleep(0.1)
        yield process.pid
    finally:
        if process.poll() is None:
            # The whole session: a server with worker processes takes them along.
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def forwarder_server(upstream: str) -> Iterator[Server]:
    """The bare forwarder (`python -m switchboard_stack.forwarder`) in front of `upstream`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "switchboard_stack.forwarder", "--port", str(port), "--upstream", upstream]
    with serve("the forwarder", command, f"{url}/healthz") as pid:
        yield Server(url, pid)


@contextmanager
def forwarder(upstream: str) -> Iterator[str]:
    """The bare forwarder in front of `upstream`; yields its base URL."""
    with forwarder_server(upstream) as server:
        yield server.url


@contextmanager
def simulator_server(args: Sequence[str]) -> Iterator[Server]:
    """A simulator of its own (no simulated first-byte latency) with `args` added, e.g. pacing flags."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "switchboard_simulator", "--host", "127.0.0.1", "--port", str(port),
               "--latency-ms", "0", "--no-record", *args]
    with serve("a simulator", command, f"{url}/healthz") as pid:
        yield Server(url, pid)
