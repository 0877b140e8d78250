"""When and how bytes leave the simulator: first-byte delay, token pacing, cut connections, hangs.

The vendor modules decide *what* to send (status, headers, body or frames); this module owns the
timing. With pacing off (tokens_per_second 0) a whole stream goes out in one write, which keeps the
simulator cheap under benchmark load; with pacing on, each token-bearing frame waits its share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import NoReturn

from aiohttp import web

from .sse import Frame


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def hang() -> NoReturn:
    """Never returns; the server cancels the handler when the client disconnects or at shutdown."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


def _cut(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def send_body(
    request: web.Request,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    delay: float = 0.0,
    disconnect: bool = False,
) -> web.StreamResponse:
    """A complete JSON answer after `delay` seconds; with `disconnect`, half the body then a cut."""
    await pause(delay)
    if not disconnect:
        return web.Response(status=status, headers=headers, body=body)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    _cut(request)
    return response


async def send_stream(
    request: web.Request,
    headers: Mapping[str, str],
    frames: Sequence[Frame],
    *,
    delay: float = 0.0,
    seconds_per_token: float = 0.0,
    disconnect_after: int | None = None,
) -> web.StreamResponse:
    """A 200 event stream (chunked) after `delay`; cut after `disconnect_after` frames if given."""
    await pause(delay)
    response = web.StreamResponse(status=200, headers=headers)
    await response.prepare(request)
    if disconnect_after is not None:
        frames = frames[:disconnect_after]
    if seconds_per_token <= 0:
        await response.write(b"".join(data for data, _ in frames))
    else:
        for data, tokens in frames:
            if tokens:
                await asyncio.sleep(tokens * seconds_per_token)
            await response.write(data)
    if disconnect_after is not None:
        _cut(request)
        return response
    await response.write_eof()
    return response
