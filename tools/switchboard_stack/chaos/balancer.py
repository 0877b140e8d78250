"""A round-robin TCP balancer: each new client connection goes to the next backend that accepts it."""

import asyncio
import contextlib
import itertools
from collections.abc import Sequence

_CHUNK = 65536


class Balancer:
    """Listens on 127.0.0.1:`port` (0: a free one) and relays each connection to one of `backends` in turn.

    A backend refusing the connection (a killed replica) is skipped for that connection; when every one
    refuses, the client's connection is closed without a byte, as a load balancer with no healthy target does.
    """

    def __init__(self, backends: Sequence[tuple[str, int]], port: int = 0) -> None:
        self.backends = list(backends)
        self.port = port
        self._next = itertools.count()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True,
                                                  backlog=1024)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        first = next(self._next)
        for offset in range(len(self.backends)):
            host, port = self.backends[(first + offset) % len(self.backends)]
            try:
                return await asyncio.open_connection(host, port)
            except OSError:
                continue
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        target: asyncio.StreamWriter | None = None
        try:
            connected = await self._connect()
            if connected is None:
                return
            target_reader, target = connected
            await asyncio.gather(_pump(reader, target), _pump(target_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            for side in (writer, target):
                if side is not None:
                    side.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes; a reset on either side ends both (the caller aborts)."""
    while True:
        data = await reader.read(_CHUNK)
        if not data:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
            return
        writer.write(data)
        await writer.drain()
