"""A TCP proxy that injects network faults between a service and Redis, PostgreSQL or any TCP server.

Traffic from the listening port goes to the target unchanged until told otherwise:

- cut: close every current connection at once (both sides reset; new connections are still accepted);
- refuse [seconds]: stop listening, so new connections are refused; current ones are left alone;
- blackhole [seconds]: new connections are accepted but not connected onward, and bytes on current ones
  stop flowing in both directions (held, as in a network partition) until resume;
- down [seconds]: refuse and cut together (the server is gone);
- resume: back to passing everything; held bytes and held connections flow on. A fault given seconds
  resumes by itself after them.

In process: `FaultProxy` (asyncio; `await proxy.start()`, then `await proxy.cut()` ...) or
`ThreadedFaultProxy` (the same on a thread of its own, plain calls, for synchronous tests).

As a process: `python -m switchboard_stack.faultproxy --listen P --target HOST:PORT [--control C]`.
SIGUSR1 cuts, SIGUSR2 toggles refuse. With --control C, an HTTP port on 127.0.0.1 takes any method on
/cut, /refuse?seconds=N, /blackhole?seconds=N, /down?seconds=N, /resume and /status and answers JSON
({"mode": ..., "connections": ..., "accepted": ..., "cut": ...}), e.g.
`curl -s -XPOST 'localhost:C/down?seconds=10'`. One line `faultproxy listening on P -> HOST:PORT` is
printed once ready.
"""

import argparse
import asyncio
import json
import signal
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

Mode = Literal["pass", "refuse", "blackhole"]
_T = TypeVar("_T")
_CHUNK = 65536


class _Link:
    """One proxied connection: the client's streams and, once connected, the target's."""

    def __init__(self, client: asyncio.StreamWriter, task: "asyncio.Task[Any] | None") -> None:
        self.client = client
        self.target: asyncio.StreamWriter | None = None
        self.task = task

    def abort(self) -> None:
        """Resets both sides at once (no FIN handshake)."""
        for writer in (self.client, self.target):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """Listens on listen_host:listen_port (0 = any free port, see `port`) and relays to target."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0,
                 listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.port = listen_port
        self.mode: Mode = "pass"
        self.accepted = 0
        self.cut_count = 0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def connections(self) -> int:
        return len(self._links)

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "connections": self.connections, "accepted": self.accepted,
                "cut": self.cut_count}

    async def start(self) -> None:
        await self._listen()

    async def close(self) -> None:
        """Stops listening and closes every connection."""
        self._cancel_timer()
        self._stop_listening()
        await self.cut()
        self._flowing.set()
        await asyncio.sleep(0.01)  # aborted transports close their sockets on the loop's next turns

    async def cut(self) -> int:
        """Closes every current connection; returns how many."""
        links = list(self._links)
        self._links.clear()
        for link in links:
            link.abort()
            if link.task is not None:
                link.task.cancel()
        await asyncio.gather(*(link.task for link in links if link.task is not None), return_exceptions=True)
        self.cut_count += len(links)
        return len(links)

    async def refuse(self, seconds: float | None = None) -> None:
        """New connections refused (the port is closed) for `seconds`, or until resume."""
        await self._enter("refuse", seconds)

    async def blackhole(self, seconds: float | None = None) -> None:
        """New connections accepted and held, bytes on current ones held, for `seconds` or until resume."""
        await self._enter("blackhole", seconds)

    async def down(self, seconds: float | None = None) -> None:
        """Refuse, then cut: the target looks gone for `seconds`, or until resume."""
        await self.refuse(seconds)
        await self.cut()

    async def resume(self) -> None:
        """Passes everything again: listens if refused, lets held bytes and connections through."""
        self._cancel_timer()
        self.mode = "pass"
        await self._listen()
        self._flowing.set()

    async def _enter(self, mode: Mode, seconds: float | None) -> None:
        if self.mode != "pass":
            await self.resume()
        self.mode = mode
        if mode == "refuse":
            self._stop_listening()
        else:
            self._flowing.clear()
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(seconds, lambda: loop.create_task(self.resume()))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()  # closes the listening socket now; accepted connections are ours to close
            self._server = None

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(client_writer, asyncio.current_task())
        self._links.add(link)
        try:
            await self._flowing.wait()
            try:
                target_reader, link.target = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                return
            await asyncio.gather(self._pump(client_reader, link.target), self._pump(target_reader, client_writer))
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            self._links.discard(link)
            link.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(_CHUNK)
            await self._flowing.wait()
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()


class ThreadedFaultProxy:
    """A FaultProxy on an event loop of its own thread, driven by plain calls; a context manager."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0,
                 listen_host: str = "127.0.0.1") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self.proxy = FaultProxy(target_host, target_port, listen_port, listen_host)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def mode(self) -> Mode:
        return self.proxy.mode

    def start(self) -> "ThreadedFaultProxy":
        self._thread.start()
        self._call(self.proxy.start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> "ThreadedFaultProxy":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        return self._call(self._status())

    def cut(self) -> int:
        return self._call(self.proxy.cut())

    def refuse(self, seconds: float | None = None) -> None:
        self._call(self.proxy.refuse(seconds))

    def blackhole(self, seconds: float | None = None) -> None:
        self._call(self.proxy.blackhole(seconds))

    def down(self, seconds: float | None = None) -> None:
        self._call(self.proxy.down(seconds))

    def resume(self) -> None:
        self._call(self.proxy.resume())

    async def _status(self) -> dict[str, Any]:
        return self.proxy.status()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(10)


async def _control(proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP request on the control port: the path names the action, ?seconds=N its duration."""
    try:
        request_line = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()).strip():
            pass  # headers: nothing in them matters
        url = urlsplit(request_line[1] if len(request_line) > 1 else "/")
        seconds_text = parse_qs(url.query).get("seconds", [""])[0]
        seconds = float(seconds_text) if seconds_text else None
        action = url.path.strip("/")
        status = "200 OK"
        if action == "cut":
            await proxy.cut()
        elif action in ("refuse", "blackhole", "down"):
            await getattr(proxy, action)(seconds)
        elif action == "resume":
            await proxy.resume()
        elif action not in ("status", ""):
            status = "404 Not Found"
        body = json.dumps(proxy.status()).encode()
    except (ValueError, OSError) as exc:
        status, body = "400 Bad Request", json.dumps({"error": str(exc)}).encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    try:
        await writer.drain()
    finally:
        writer.close()


async def _serve(listen: int, target_host: str, target_port: int, control: int | None) -> None:
    proxy = FaultProxy(target_host, target_port, listen, listen_host="0.0.0.0")
    await proxy.start()
    loop = asyncio.get_running_loop()

    def toggle_refuse() -> None:
        loop.create_task(proxy.resume() if proxy.mode == "refuse" else proxy.refuse())

    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(proxy.cut()))
    loop.add_signal_handler(signal.SIGUSR2, toggle_refuse)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    servers = []
    if control is not None:
        servers.append(await asyncio.start_server(lambda r, w: _control(proxy, r, w), "127.0.0.1", control,
                                                  family=socket.AF_INET))
    print(f"faultproxy listening on {proxy.port} -> {target_host}:{target_port}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    await proxy.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True, help="port to listen on (all interfaces)")
    parser.add_argument("--target", required=True, help="HOST:PORT to relay to")
    parser.add_argument("--control", type=int, help="HTTP control port on 127.0.0.1 (optional)")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    if not host or not port.isdigit():
        parser.error("--target must be HOST:PORT")
    asyncio.run(_serve(args.listen, host, int(port), args.control))


if __name__ == "__main__":
    main()
