"""The fault-injecting TCP proxy: pass, cut, refuse, blackhole, down and resume, in process and as a process."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest

from switchboard_stack.faultproxy import FaultProxy, ThreadedFaultProxy
from switchboard_stack.ports import free_port
from tests.stack.conftest import Lines, wait_until

from ..required import unavailable


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy("127.0.0.1", echo_port)
    await proxy.start()
    yield proxy
    await proxy.close()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float = 2.0) -> bytes:
    writer.write(b"ping")
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(4), timeout)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def test_passes_bytes_both_ways(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer) == b"ping"
    assert proxy.status() == {"mode": "pass", "connections": 1, "accepted": 1, "cut": 0}
    await _close(writer)


async def test_cut_closes_current_connections_and_accepts_new_ones(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer) == b"ping"
    assert await proxy.cut() == 1
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer)
    await _close(writer)
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer) == b"ping"
    assert proxy.status()["cut"] == 1
    await _close(writer)


async def test_refuse_refuses_new_connections_until_its_time_is_up(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    await proxy.refuse(0.5)
    with pytest.raises(ConnectionRefusedError):
        await _connect(proxy)
    assert await _roundtrip(reader, writer) == b"ping", "refuse leaves current connections alone"
    await asyncio.sleep(0.7)
    assert proxy.mode == "pass"
    second_reader, second_writer = await _connect(proxy)
    assert await _roundtrip(second_reader, second_writer) == b"ping"
    await _close(writer)
    await _close(second_writer)


async def test_blackhole_holds_bytes_and_new_connections_until_resume(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    await proxy.blackhole()
    with pytest.raises(TimeoutError):
        await _roundtrip(reader, writer, timeout=0.3)
    new_reader, new_writer = await _connect(proxy)  # accepted, not answered
    with pytest.raises(TimeoutError):
        await _roundtrip(new_reader, new_writer, timeout=0.3)
    await proxy.resume()
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
    assert await asyncio.wait_for(new_reader.readexactly(4), 2) == b"ping"
    await _close(writer)
    await _close(new_writer)


async def test_down_cuts_and_refuses_then_comes_back(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    await proxy.down(0.4)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer)
    await _close(writer)
    with pytest.raises(ConnectionRefusedError):
        await _connect(proxy)
    await asyncio.sleep(0.6)
    reader, writer = await _connect(proxy)
    assert await _roundtrip(reader, writer) == b"ping"
    await _close(writer)


def test_threaded_proxy_in_front_of_redis() -> None:
    redis = pytest.importorskip("redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with ThreadedFaultProxy("127.0.0.1", 6379) as proxy:
        client = redis.Redis(port=proxy.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                             retry=Retry(NoBackoff(), 0))
        try:
            client.ping()
        except redis.ConnectionError as exc:
            unavailable("Redis at 127.0.0.1:6379", exc)
        try:
            proxy.down()
            with pytest.raises(redis.ConnectionError):
                client.ping()
            proxy.resume()
            assert client.ping()
            proxy.blackhole()
            with pytest.raises(redis.TimeoutError):
                client.ping()
            proxy.resume()
            assert client.ping()
        finally:
            client.close()


def _control(port: int, path: str) -> dict[str, object]:
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST"),
                                timeout=5) as response:
        return dict(json.loads(response.read()))


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"ping")
            return sock.recv(4) == b"ping"
    except OSError:
        return False


def test_as_a_process_with_signals_and_control_port(echo_server_thread: int) -> None:
    listen, control = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard_stack.faultproxy", "--listen", str(listen),
         "--target", f"127.0.0.1:{echo_server_thread}", "--control", str(control)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        assert Lines(process.stdout).wait_for(f"faultproxy listening on {listen}", 10)
        assert _answers(listen)
        assert _control(control, "/down?seconds=30")["mode"] == "refuse"
        assert not _answers(listen)
        assert _control(control, "/resume")["mode"] == "pass"
        assert _answers(listen)
        process.send_signal(signal.SIGUSR2)
        assert wait_until(lambda: not _answers(listen), 5)
        process.send_signal(signal.SIGUSR2)
        assert wait_until(lambda: _answers(listen), 5)
        with socket.create_connection(("127.0.0.1", listen), timeout=2) as held:
            held.sendall(b"ping")
            assert held.recv(4) == b"ping"
            process.send_signal(signal.SIGUSR1)
            try:
                assert held.recv(4) == b"", "the cut connection is closed"
            except ConnectionResetError:
                pass
    finally:
        process.terminate()
        assert process.wait(10) == 0
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def echo_server_thread() -> Iterator[int]:
    """An echo server on a thread of its own (the proxy process under test needs a live target)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    while data := conn.recv(1024):
                        conn.sendall(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(2)
    listener.close()
