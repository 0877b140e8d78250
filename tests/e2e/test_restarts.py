"""Edges that die or stop lose nothing: usage survives SIGKILL through the spool, a killed edge's leases come back,
and SIGTERM drains open requests, each ending properly and settled before the edge exits."""

import asyncio
import signal
import sqlite3
import threading
import time
from pathlib import Path

import grpc
import httpx

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

CLAUDE = "/claude/v1/messages"
OPENAI = "/openai/v1/chat/completions"
SLOW = ["--tokens-per-second", "20", "--reply-tokens", "400"]


def _count(db_path: Path, where: str = "1=1") -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM usage_records WHERE {where}").fetchone()[0])


def _wait_for(predicate, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _in_flight(stack: Stack) -> int:
    async def ask() -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports.router}") as channel:
            reply = await router_pb2_grpc.RouterServiceStub(channel).ListAccounts(
                router_pb2.ListAccountsRequest(), timeout=5)
        return sum(status.in_flight for status in reply.accounts)

    return asyncio.run(ask())


def _edge(stack: Stack):  # type: ignore[no-untyped-def]
    return next(process for process in stack.processes if process.name == "edge")


def _restart_edge(stack: Stack) -> None:
    stack.processes.remove(_edge(stack))
    stack._spawn("edge", ["-m", "switchboard_edge"], stack.environment())
    assert _wait_for(lambda: _ready(stack))


def _ready(stack: Stack) -> bool:
    try:
        return httpx.get(f"{stack.base_url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _open_streams(stack: Stack, key: str, count: int, tag: str) -> tuple[list[threading.Thread], list[str]]:
    """Streams that each read their first event, then keep reading until the edge ends them."""
    started = threading.Barrier(count + 1)
    endings: list[str] = []

    def stream(index: int) -> None:
        body = {"model": "claude-sonnet-4-20250514", "max_tokens": 2000, "stream": True,
                "metadata": {"user_id": f"user_1_account_2_session_{tag}-{index}"},
                "messages": [{"role": "user", "content": "Tell me a long story"}]}
        lines: list[str] = []
        try:
            with httpx.stream("POST", stack.base_url + CLAUDE, json=body, timeout=60,
                              headers={"x-api-key": key, "anthropic-version": "2023-06-01"}) as response:
                iterator = response.iter_lines()
                lines.append(next(iterator))
                started.wait()
                lines.extend(iterator)
        except httpx.HTTPError as exc:
            lines.append(f"transport error: {type(exc).__name__}")
        finally:
            endings.append("\n".join(lines[-3:]))

    threads = [threading.Thread(target=stream, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    started.wait(timeout=20)
    return threads, endings


def test_usage_survives_an_edge_killed_with_sigkill(tmp_path: Path) -> None:
    # Usage would only be flushed after an hour: only the spool can bring it back.
    stack = Stack(tmp_path, Ports.free(), env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "3600"})
    with stack:
        key = create_demo_key(stack.db_path)
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            for index in range(30):
                body = {"model": "gpt-4o-mini", "stream": index % 2 == 0,
                        "messages": [{"role": "user", "content": f"Hi {index}"}]}
                response = client.post(OPENAI, json=body, headers={"authorization": f"Bearer {key}"})
                assert response.status_code == 200
        _edge(stack).popen.send_signal(signal.SIGKILL)
        _edge(stack).popen.wait()
        assert _count(stack.db_path) == 0
        _restart_edge(stack)
        assert _wait_for(lambda: _count(stack.db_path) == 30), _count(stack.db_path)
        assert not list((tmp_path / "edge-spool").glob("usage-*.spool")) or _wait_for(
            lambda: not list((tmp_path / "edge-spool").glob("usage-*.spool")))
    assert _count(stack.db_path) == 30


def test_usage_of_an_edge_killed_mid_load_is_recorded_once_after_it_restarts(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports.free(), env={"SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "3600"})
    with stack:
        key = create_demo_key(stack.db_path)
        answered: list[int] = []
        stop = threading.Event()

        def load(worker: int) -> None:
            with httpx.Client(base_url=stack.base_url, timeout=10) as client:
                for index in range(1000):
                    if stop.is_set():
                        return
                    body = {"model": "gpt-4o-mini", "stream": index % 2 == 0,
                            "messages": [{"role": "user", "content": f"load {worker}-{index}"}]}
                    try:
                        response = client.post(OPENAI, json=body, headers={"authorization": f"Bearer {key}"})
                        response.read()
                    except httpx.TransportError:
                        return  # the edge died under this request
                    answered.append(response.status_code)

        workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        assert _wait_for(lambda: len(answered) >= 40)
        _edge(stack).popen.send_signal(signal.SIGKILL)  # with requests in flight
        _edge(stack).popen.wait()
        stop.set()
        for worker in workers:
            worker.join(15)
        served = answered.count(200)
        assert served == len(answered) >= 40
        _restart_edge(stack)
        # Every answered request is in the ledger once; at most the four in flight at the kill may be too.
        assert _wait_for(lambda: _count(stack.db_path) >= served), (_count(stack.db_path), served)
        time.sleep(0.5)
        assert served <= _count(stack.db_path) <= served + len(workers)


def test_leases_of_a_killed_edge_come_back_when_it_restarts(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports.free(), simulator_args=SLOW)
    with stack:
        key = create_demo_key(stack.db_path)
        threads, _ = _open_streams(stack, key, 3, "killed")
        assert _in_flight(stack) == 3
        _edge(stack).popen.send_signal(signal.SIGKILL)
        _edge(stack).popen.wait()
        for thread in threads:
            thread.join(10)
        assert _in_flight(stack) == 3
        _restart_edge(stack)
        assert _wait_for(lambda: _in_flight(stack) == 0, timeout=10)


def test_leases_of_an_edge_that_never_comes_back_expire_with_its_holder(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports.free(), simulator_args=SLOW, env={"SWITCHBOARD_ROUTER_HOLDER_TTL_SECONDS": "2"})
    with stack:
        key = create_demo_key(stack.db_path)
        _open_streams(stack, key, 2, "gone")
        assert _in_flight(stack) == 2
        _edge(stack).popen.send_signal(signal.SIGKILL)
        _edge(stack).popen.wait()
        # Far sooner than the 900 s lease TTL of old.
        assert _wait_for(lambda: _in_flight(stack) == 0, timeout=15)


def test_sigterm_drains_open_streams_each_ended_and_settled(tmp_path: Path) -> None:
    # Streams of 20 s; the drain grace is 1.5 s: each stream is cut with an error event and settled.
    stack = Stack(tmp_path, Ports.free(), simulator_args=SLOW,
                  env={"SWITCHBOARD_EDGE_DRAIN_SECONDS": "1.5", "SWITCHBOARD_EDGE_USAGE_FLUSH_SECONDS": "3600"})
    with stack:
        key = create_demo_key(stack.db_path)
        threads, endings = _open_streams(stack, key, 5, "drained")
        edge = _edge(stack)
        edge.popen.send_signal(signal.SIGTERM)
        # While draining, a new request is refused in its endpoint's format.
        time.sleep(0.3)
        try:
            refused = httpx.post(stack.base_url + OPENAI, headers={"authorization": f"Bearer {key}"}, timeout=5,
                                 json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
            assert refused.status_code == 503 and refused.json()["error"]["type"] == "service_unavailable"
        except httpx.ConnectError:
            pass  # the listener is already closed: just as good for a client behind a load balancer
        for thread in threads:
            thread.join(20)
        assert edge.popen.wait(20) in (0, -signal.SIGTERM)  # uvicorn ends by re-raising the signal it handled
        assert len(endings) == 5
        for ending in endings:
            assert "event: error" in ending and "restarting" in ending, ending
        assert _count(stack.db_path, "end_reason = 'shutdown' AND truncated = 1 AND output_tokens > 0") == 5
        assert _in_flight(stack) == 0
        log = (tmp_path / "edge.log").read_text()
        assert "Traceback" not in log, log[-3000:]
