"""The edge under a real uvicorn server with its httptools protocol: header limits, deadlines, malformed heads.

Auth and router are the in-process gRPC fakes, the upstream the real simulator app (an aiohttp server, with
aiohttp's default header limits) on a local port. Requests go over raw sockets, so the tests see exactly
what the client gets: status line, headers, body, and when the connection is closed.
"""

import asyncio
import logging
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx
import orjson
import pytest
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.http_parser import HttpRequestParserC, HttpRequestParserPy

from switchboard.router.v1 import router_pb2
from switchboard_edge import __main__ as edge_main
from switchboard_edge.http_limits import HttpLimits
from switchboard_edge.settings import EdgeSettings
from switchboard_simulator import config as simulator_config
from switchboard_simulator.app import create_app as create_simulator
from switchboard_stack.ports import free_port

from .control_fakes import FakeAuth, FakeRouter, serve_fakes
from .upstream_fakes import edge_listening

DEADLINE = 0.5  # header, body and idle deadlines here
LINE_LIMIT = 8 * 1024
CLAUDE = b"POST /claude/v1/messages HTTP/1.1\r\nhost: edge\r\n"
OPENAI = b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: edge\r\n"
CLAUDE_BODY = orjson.dumps({"model": "claude-sonnet-4-5", "max_tokens": 8,
                            "messages": [{"role": "user", "content": "Hi"}]})


@dataclass
class Edge:
    port: int
    auth: FakeAuth
    simulator: str


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:  # type: ignore[type-arg]
        return orjson.loads(self.body)  # type: ignore[no-any-return]


@pytest.fixture()
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    runner = web.AppRunner(create_simulator(simulator_config.load(["--reply-tokens", "5"])))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    simulator = f"http://127.0.0.1:{runner.addresses[0][1]}"
    auth, router = FakeAuth(), FakeRouter()
    router.account = router_pb2.Account(
        id="claude-console/sim", name="sim", platform="claude-console", base_url=simulator,
        credential=router_pb2.Credential(api_key="sk-sim-anthropic"))
    grpc_server, target = await serve_fakes(auth, router)
    settings = EdgeSettings(port=free_port(), auth_target=target, router_target=target, usage_flush_seconds=0.05,
                            spool_dir=str(tmp_path / "spool"), instance_id="edge-unit",
                            header_timeout_seconds=DEADLINE, body_timeout_seconds=DEADLINE,
                            idle_timeout_seconds=DEADLINE)
    try:
        async with edge_listening(settings):
            yield Edge(settings.port, auth, simulator)
    finally:
        await grpc_server.stop(None)
        await runner.cleanup()


async def send(edge: Edge, *parts: bytes, pause: float = 0.0) -> tuple[Answer | None, float]:
    """Sends `parts` (pausing between them) until the edge answers or closes, and reads until it closes;
    the answer (None if it sent nothing) and the seconds from connecting to the close."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    received: list[bytes] = []
    reading = asyncio.create_task(_read_all(reader, received))
    try:
        for part in parts:
            if received or reading.done():
                break
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break
            if pause:
                await asyncio.sleep(pause)
        await asyncio.wait_for(reading, 5)
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    raw = b"".join(received)
    if not raw:
        return None, elapsed
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body), elapsed


async def _read_all(reader: asyncio.StreamReader, received: list[bytes]) -> None:
    try:
        while chunk := await reader.read(65536):
            received.append(chunk)
    except ConnectionError:
        pass


def claude_request(*headers: bytes, body: bytes = CLAUDE_BODY) -> bytes:
    return (CLAUDE + b"x-api-key: good\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
            + b"".join(header + b"\r\n" for header in headers)
            + b"content-length: %d\r\n\r\n" % len(body) + body)


def assert_closed_with(answer: Answer | None, status: int) -> Answer:
    assert answer is not None and answer.status == status, answer
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.body)
    return answer


def anthropic_error(answer: Answer, error_type: str) -> str:
    payload = answer.json()
    assert payload["type"] == "error" and payload["error"]["type"] == error_type, payload
    return str(payload["error"]["message"])


def openai_error(answer: Answer, code: str) -> str:
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["param"] is None, error
    return str(error["message"])


# -- what still works --------------------------------------------------------------------------------------


async def test_a_normal_request_is_relayed_and_the_connection_kept_alive(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        for _ in range(2):
            response = await client.post("/claude/v1/messages", content=CLAUDE_BODY, headers={
                "x-api-key": "good", "anthropic-version": "2023-06-01", "content-type": "application/json"})
            assert response.status_code == 200 and response.json()["type"] == "message"
            assert response.headers.get("connection") != "close"


async def test_the_longest_header_line_let_through_is_accepted_by_the_upstream(edge: Edge) -> None:
    """aiohttp (the simulator) takes `name: value` up to 8190 bytes: the edge lets through no longer line."""
    name = b"anthropic-beta"
    longest = b"b" * (LINE_LIMIT - len(name) - 4)  # `name: value` + CRLF = the limit
    answer, _ = await send(edge, claude_request(name + b": " + longest), b"")
    # Not closed by the edge: read what came before the idle deadline closed the connection.
    assert answer is not None and answer.status == 200, answer
    async with httpx.AsyncClient() as client:
        recorded = (await client.get(f"{edge.simulator}/_simulator/requests")).json()["requests"]
    assert recorded[-1]["headers"]["anthropic-beta"] == longest.decode()
    # One byte more is the edge's 431, in the endpoint's format; the upstream never sees it.
    answer, _ = await send(edge, claude_request(name + b": " + longest + b"b"))
    message = anthropic_error(assert_closed_with(answer, 431), "invalid_request_error")
    assert "anthropic-beta" in message and str(LINE_LIMIT) in message
    async with httpx.AsyncClient() as client:
        assert len((await client.get(f"{edge.simulator}/_simulator/requests")).json()["requests"]) == len(recorded)


@pytest.mark.parametrize("parser", [HttpRequestParserC, HttpRequestParserPy], ids=["aiohttp-c", "aiohttp-py"])
@pytest.mark.parametrize("name", [b"a", b"anthropic-beta", b"x-stainless-helper-method"])
async def test_aiohttps_parsers_take_the_longest_line_the_edge_lets_through(parser: type, name: bytes) -> None:
    """Both of aiohttp's parsers, at their default limits (what the simulator runs), sans I/O."""
    limits = HttpLimits()
    value = b"v" * (limits.max_header_line_bytes - len(name) - 4)  # the edge counts `name: value` and CRLF
    request = b"GET / HTTP/1.1\r\nhost: upstream\r\n" + name + b": " + value + b"\r\n\r\n"
    messages, _, _ = parser(mock.Mock(), asyncio.get_running_loop(), 2**16).feed_data(request)
    assert messages[0][0].headers[name.decode()] == value.decode()
    if parser is HttpRequestParserPy:  # the stricter one: one byte more is too long for it
        with pytest.raises(LineTooLong):
            parser(mock.Mock(), asyncio.get_running_loop(), 2**16).feed_data(request.replace(value, value + b"v"))


# -- header limits -----------------------------------------------------------------------------------------


async def test_a_9kb_anthropic_beta_header_gets_431_in_anthropic_format(edge: Edge) -> None:
    answer, _ = await send(edge, claude_request(b"anthropic-beta: " + b"x" * 9000))
    anthropic_error(assert_closed_with(answer, 431), "invalid_request_error")
    assert edge.auth.authenticated == 0  # refused before the app saw it


async def test_1000_headers_get_431(edge: Edge) -> None:
    headers = b"".join(b"x-h%d: v\r\n" % index for index in range(1000))
    answer, _ = await send(edge, OPENAI + headers + b"authorization: Bearer good\r\ncontent-length: 2\r\n\r\n{}")
    message = openai_error(assert_closed_with(answer, 431), "request_header_fields_too_large")
    assert "100 headers" in message


async def test_a_200kb_header_gets_431_even_when_it_trickles_in(edge: Edge) -> None:
    answer, _ = await send(edge, claude_request(b"anthropic-beta: " + b"x" * 200_000))
    anthropic_error(assert_closed_with(answer, 431), "invalid_request_error")
    # Sent in pieces with no end in sight: refused once the line passes the limit, not after buffering it all.
    pieces = [CLAUDE + b"anthropic-beta: "] + [b"x" * 4096] * 50
    answer, elapsed = await send(edge, *pieces, pause=0.001)
    anthropic_error(assert_closed_with(answer, 431), "invalid_request_error")
    assert elapsed < DEADLINE


async def test_headers_together_past_the_total_get_431(edge: Edge) -> None:
    headers = [b"x-h%d: " % index + b"v" * 1000 for index in range(40)]  # each line fine, 40 KB together
    answer, _ = await send(edge, claude_request(*headers))
    message = anthropic_error(assert_closed_with(answer, 431), "invalid_request_error")
    assert str(32 * 1024) in message


async def test_a_request_target_past_the_line_limit_gets_414(edge: Edge) -> None:
    answer, _ = await send(edge, b"GET /claude/" + b"a" * 9000 + b" HTTP/1.1\r\nhost: edge\r\n\r\n")
    anthropic_error(assert_closed_with(answer, 414), "invalid_request_error")


# -- malformed heads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_head, check", [
    pytest.param(CLAUDE + b"x-api-key: ab\x01cd\r\n\r\n",
                 lambda answer: anthropic_error(answer, "authentication_error"), id="x-api-key-anthropic"),
    pytest.param(OPENAI + b"Authorization: Bearer ab\x7fcd\r\n\r\n",
                 lambda answer: openai_error(answer, "invalid_api_key"), id="authorization-openai"),
    pytest.param(CLAUDE + b"X-Goog-Api-Key: ab\x00cd\r\n\r\n",
                 lambda answer: anthropic_error(answer, "authentication_error"), id="x-goog-api-key"),
])
async def test_control_bytes_in_a_key_header_get_the_endpoints_401(edge: Edge, request_head: bytes, check) -> None:  # type: ignore[no-untyped-def]
    answer, _ = await send(edge, request_head)
    message = check(assert_closed_with(answer, 401))
    assert "not allowed" in message and "ab" not in message and "cd" not in message  # the key is never echoed


async def test_a_key_header_split_across_reads_is_still_named(edge: Edge) -> None:
    answer, _ = await send(edge, CLAUDE + b"x-api-key: ab", b"\x01cd\r\n\r\n", pause=0.05)
    anthropic_error(assert_closed_with(answer, 401), "authentication_error")


async def test_control_bytes_in_another_header_get_the_endpoints_400(edge: Edge) -> None:
    answer, _ = await send(edge, CLAUDE + b"x-api-key: good\r\nx-note: a\x01b\r\n\r\n")
    message = anthropic_error(assert_closed_with(answer, 400), "invalid_request_error")
    assert message.startswith("Malformed HTTP request")
    answer, _ = await send(edge, OPENAI + b"x-note: a\x01b\r\n\r\n")
    openai_error(assert_closed_with(answer, 400), "invalid_request")
    assert edge.auth.authenticated == 0


# -- slow and idle clients -------------------------------------------------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_deadline(edge: Edge) -> None:
    answer, elapsed = await send(edge)
    assert answer is None
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + 1


async def test_a_header_trickling_byte_by_byte_is_cut_with_408(edge: Edge) -> None:
    request = claude_request()
    answer, elapsed = await send(edge, *(request[index:index + 1] for index in range(len(request))), pause=0.02)
    anthropic_error(assert_closed_with(answer, 408), "invalid_request_error")
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + 1
    assert edge.auth.authenticated == 0


async def test_a_stalled_body_is_cut_with_408(edge: Edge) -> None:
    request = claude_request()
    answer, elapsed = await send(edge, request[:-10])  # all but the last 10 bytes of the body
    anthropic_error(assert_closed_with(answer, 408), "invalid_request_error")
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + 1
    assert edge.auth.authenticated == 1  # the key was checked; the body never came


async def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(edge: Edge) -> None:
    answer, elapsed = await send(edge, b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n")
    assert answer is not None and answer.status == 200 and answer.headers.get("connection") != "close"
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + 1


async def test_a_kept_alive_connection_gets_a_fresh_header_deadline_per_request(edge: Edge) -> None:
    """The deadline runs from a request's first byte, so a connection that idled between requests still works."""
    get = b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        for _ in range(3):
            writer.write(get[:10])
            await asyncio.sleep(DEADLINE * 0.6)
            writer.write(get[10:])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()


async def _answered_early(edge: Edge) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes, bytes]:
    """A bad key with a long upload: the edge answers 401 before the body has arrived."""
    body = b"x" * 100_000
    head = (CLAUDE + b"x-api-key: not-a-key\r\ncontent-type: application/json\r\n"
            + b"content-length: %d\r\n\r\n" % len(body))
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(head + body[:1000])
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert answer.startswith(b"HTTP/1.1 401")
    length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return reader, writer, body[1000:], answer


async def test_an_upload_answered_early_then_finished_is_closed_after_the_idle_timeout(edge: Edge) -> None:
    reader, writer, rest, _ = await _answered_early(edge)
    try:
        writer.write(rest)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, with nothing more said
        assert time.monotonic() - started < DEADLINE + 1
    finally:
        writer.close()


async def test_an_upload_answered_early_then_stalled_is_closed_after_the_body_deadline(edge: Edge) -> None:
    reader, writer, _, _ = await _answered_early(edge)
    try:
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # no 408 after the 401: only closed
        assert time.monotonic() - started < DEADLINE + 1
    finally:
        writer.close()


async def test_pipelined_requests_are_all_answered(edge: Edge) -> None:
    get = b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(claude_request() + get + get[:20])  # the third one trickles in behind the others
        await asyncio.sleep(0.1)
        writer.write(get[20:])
        for status in (b"200", b"200", b"200"):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert head.split(b" ")[1] == status, head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
    finally:
        writer.close()


@pytest.mark.parametrize("soft, hard, expected", [
    pytest.param(1024, 524288, 524288, id="to-the-hard-limit"),
    pytest.param(1024, resource.RLIM_INFINITY, 1 << 20, id="unlimited-hard-limit"),
    pytest.param(4096, 4096, 4096, id="already-there"),
])
def test_the_open_file_soft_limit_is_raised(monkeypatch: pytest.MonkeyPatch, soft: int, hard: int,
                                            expected: int) -> None:
    """Each connection holds a descriptor: 1,024 would let idle connections starve real ones."""
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))
    assert edge_main.raise_open_files_limit(logging.getLogger("test")) == expected
    assert set_to == ([] if soft == expected else [(expected, hard)])
