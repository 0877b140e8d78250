"""The bare forwarder `make bench` measures the gateway against: the floor a Python gateway can reach.

Starlette and one pooled aiohttp ClientSession, nothing else: no auth, no routing, no accounting. Two
routes (and GET /healthz, for start-up), each to one upstream path with the simulator's key put in place of the
client's; non-stream replies are read and written whole, SSE replies relayed chunk by chunk as they arrive
(no buffering). Run with `python -m switchboard_stack.forwarder --port P --upstream URL` (uvicorn on uvloop
and httptools, as the edge).
"""

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from switchboard_stack.launcher import SIMULATOR_ANTHROPIC_KEY, SIMULATOR_OPENAI_KEY

# Client headers not forwarded: the connection's own and the credentials (replaced by the simulator's key).
_DROPPED_REQUEST = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding",
                              "x-api-key", "authorization"})
# Upstream headers not relayed: uvicorn frames the reply itself.
_DROPPED_RESPONSE = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"})


def create_app(upstream: str) -> Starlette:
    upstream = upstream.rstrip("/")
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         timeout=aiohttp.ClientTimeout(total=None)) as session:
            state["session"] = session
            yield

    def forward(path: str, credential: tuple[str, str]) -> Callable[[Request], Awaitable[Response]]:
        url = upstream + path

        async def endpoint(request: Request) -> Response:
            headers = {k: v for k, v in request.headers.items() if k not in _DROPPED_REQUEST}
            headers[credential[0]] = credential[1]
            body = await request.body()
            upstream_response = await state["session"].post(url, data=body, headers=headers)
            reply_headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in _DROPPED_RESPONSE}
            if not upstream_response.headers.get("content-type", "").startswith("text/event-stream"):
                async with upstream_response:
                    content = await upstream_response.read()
                return Response(content, upstream_response.status, reply_headers)

            async def relay() -> AsyncIterator[bytes]:
                async with upstream_response:
                    async for chunk in upstream_response.content.iter_any():
                        yield chunk

            return StreamingResponse(relay(), upstream_response.status, reply_headers)

        return endpoint

    async def healthz(_: Request) -> Response:
        return Response(b"ok")

    routes = [
        Route("/healthz", healthz),
        Route("/claude/v1/messages", forward("/v1/messages", ("x-api-key", SIMULATOR_ANTHROPIC_KEY)),
              methods=["POST"]),
        Route("/openai/v1/chat/completions",
              forward("/v1/chat/completions", ("authorization", f"Bearer {SIMULATOR_OPENAI_KEY}")), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the simulator's base URL, e.g. http://127.0.0.1:8090")
    args = parser.parse_args()
    uvicorn.run(create_app(args.upstream), host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
