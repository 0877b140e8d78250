"""Request smuggling against a real edge: uvicorn with the edge's own httptools protocol (as `python -m
switchboard_edge` runs it), raw bytes over a socket. A request whose framing is ambiguous (Content-Length and
Transfer-Encoding, two Content-Lengths, an obfuscated or unsupported Transfer-Encoding) is refused with 400 and
the connection closed: the request never reaches the app and the request smuggled behind it is never answered.
"""

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from switchboard_edge.settings import EdgeSettings
from switchboard_stack.ports import free_port

from ..edge.control_fakes import FakeAuth, FakeRouter, serve_fakes
from ..edge.upstream_fakes import edge_listening

# One server for the module: each test reads the change it makes to the fake auth's count.
pytestmark = pytest.mark.asyncio(loop_scope="module")

# The request hidden in the first one's body: answered 200 with {"status":"ok"} if it were ever parsed.
SMUGGLED = b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n"
HEAD = (b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer good\r\n"
        b"content-type: application/json\r\n")
BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}'
CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)


@dataclass
class Edge:
    port: int
    auth: FakeAuth
    router: FakeRouter


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    auth, router = FakeAuth(), FakeRouter()
    grpc_server, target = await serve_fakes(auth, router)
    settings = EdgeSettings(port=free_port(), auth_target=target, router_target=target,
                            spool_dir=str(tmp_path_factory.mktemp("smuggling") / "spool"), instance_id="edge-smuggling")
    try:
        async with edge_listening(settings, ws="websockets-sansio"):
            yield Edge(settings.port, auth, router)
    finally:
        await grpc_server.stop(None)


async def exchange(edge: Edge, raw: bytes) -> bytes:
    """Sends `raw` at once and reads until the edge closes the connection (at most 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()


def statuses(raw: bytes) -> list[int]:
    """The status of every answer in `raw`, in order (an answer's body runs straight into the next one)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


async def test_a_well_framed_pipeline_is_answered_in_full(edge: Edge) -> None:
    """The control: the same bytes framed honestly get both requests answered, so a refusal below is the
    framing's doing and an answered smuggled request would show."""
    raw = await exchange(edge, b"POST /healthz HTTP/1.1\r\nhost: edge\r\ncontent-length: 4\r\n\r\nabcd"
                         + SMUGGLED.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
    assert statuses(raw) == [405, 200] and b'{"status":"ok"}' in raw


AMBIGUOUS = [
    pytest.param(b"content-length: %d\r\ntransfer-encoding: chunked\r\n" % len(CHUNKED_BODY), id="CL.TE"),
    pytest.param(b"transfer-encoding: chunked\r\ncontent-length: %d\r\n" % len(CHUNKED_BODY), id="TE.CL"),
    pytest.param(b"content-length: 4\r\ntransfer-encoding: xchunked\r\n", id="CL.TE-unknown"),
    pytest.param(b"content-length: %d\r\ncontent-length: %d\r\n" % (len(CHUNKED_BODY), len(CHUNKED_BODY) + 4),
                 id="two-content-lengths"),
    pytest.param(b"content-length: %d\r\ncontent-length: %d\r\n" % (len(CHUNKED_BODY), len(CHUNKED_BODY)),
                 id="content-length-twice"),
    pytest.param(b"content-length: %d, %d\r\n" % (len(CHUNKED_BODY), len(CHUNKED_BODY)), id="content-length-list"),
    pytest.param(b"content-length: +%d\r\n" % len(CHUNKED_BODY), id="content-length-signed"),
    pytest.param(b"content-length : %d\r\n" % len(CHUNKED_BODY), id="content-length-space-before-colon"),
    pytest.param(b"transfer-encoding: chunked, identity\r\n", id="TE-chunked-identity"),
    pytest.param(b"transfer-encoding : chunked\r\n", id="TE-space-before-colon"),
    pytest.param(b"transfer-encoding: xchunked\r\n", id="TE-xchunked"),
    pytest.param(b"transfer-encoding: identity\r\n", id="TE-identity"),
    pytest.param(b"transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n", id="TE-twice"),
    pytest.param(b"transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n", id="TE-chunked-twice"),
    pytest.param(b"transfer-encoding:\x0bchunked\r\n", id="TE-vertical-tab"),
    pytest.param(b"x-filler: a\r\n transfer-encoding: chunked\r\n", id="TE-folded-line"),
    pytest.param(b"transfer-encoding:\r\n chunked\r\n", id="TE-folded-value"),
    # Valid syntax, but a coding the edge does not decode: it would reach the app as it was sent.
    pytest.param(b"transfer-encoding: gzip, chunked\r\n", id="TE-gzip-chunked"),
]


@pytest.mark.parametrize("framing", AMBIGUOUS)
async def test_ambiguous_framing_is_refused_and_nothing_behind_it_answered(edge: Edge, framing: bytes) -> None:
    authenticated, picked = edge.auth.authenticated, edge.router.issued
    raw = await exchange(edge, HEAD + framing + b"\r\n" + CHUNKED_BODY + SMUGGLED)
    assert statuses(raw) == [400], raw  # one answer, and the connection closed after it
    assert b"connection: close" in raw.lower()
    assert b'"status":"ok"' not in raw
    assert b'"type":"invalid_request_error"' in raw  # the endpoint's (OpenAI) error format
    # The refused request never reached the app.
    assert (edge.auth.authenticated, edge.router.issued) == (authenticated, picked)


@pytest.mark.parametrize("framing", [
    pytest.param(b"transfer-encoding: chunked\r\n", id="chunked"),
    pytest.param(b"transfer-encoding: Chunked \r\n", id="chunked-case-and-space"),
    pytest.param(b"transfer-encoding: , chunked\r\n", id="chunked-empty-element"),
])
async def test_plain_chunked_framing_is_served(edge: Edge, framing: bytes) -> None:
    """What the guard lets through is what RFC 9112 calls chunked: the body is the request's, and the request
    pipelined after it is a request of its own."""
    picked = edge.router.issued
    raw = await exchange(edge, HEAD + framing + b"\r\n" + CHUNKED_BODY
                         + SMUGGLED.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
    assert len(statuses(raw)) == 2 and statuses(raw)[1] == 200 and b'{"status":"ok"}' in raw
    assert edge.router.issued == picked + 1  # the request, its chunked body read, went on to an account


@pytest.mark.parametrize("chunks", [
    pytest.param(b"%x\nabcd\r\n0\r\n\r\n" % 4, id="chunk-size-bare-lf"),
    pytest.param(b"-1\r\nab\r\n0\r\n\r\n", id="chunk-size-negative"),
    pytest.param(b"fffffffffffffffff1\r\nab\r\n0\r\n\r\n", id="chunk-size-overflow"),
    pytest.param(b"4;ext\nabcd\r\n0\r\n\r\n", id="chunk-extension-bare-lf"),
])
async def test_a_malformed_chunked_body_is_refused(edge: Edge, chunks: bytes) -> None:
    raw = await exchange(edge, HEAD + b"transfer-encoding: chunked\r\n\r\n" + chunks + SMUGGLED)
    assert b'"status":"ok"' not in raw
    assert len(statuses(raw)) <= 1 and all(status >= 400 for status in statuses(raw))
