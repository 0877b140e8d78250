"""The Responses API over WebSocket (Codex's first transport), bridged onto the HTTP relay.

Codex opens `GET {base}/responses` with `Upgrade: websocket` and falls back to HTTP only after several
failed attempts, so every Responses route also takes the upgrade. The key comes from the handshake headers
as on HTTP; a refused key is refused before the upgrade, with the HTTP error in OpenAI's format.

Each `response.create` message is one response: its body (without `type`, with `stream: true`) goes
through the relay exactly as a POST would (authorised, routed with a fresh account choice unless the
session is sticky, failed over, settled and billed on its own), and every SSE event of the answer is sent
as one text message. An error before the answer starts comes as the wrapped error event Codex reads,
`{"type": "error", "status": N, "error": {...}, "headers": {...}}`; the connection stays open.

As in OpenAI's WebSocket mode, a `previous_response_id` naming this connection's last response continues
it with incremental input: the upstreams are reached over HTTP and keep no state (Codex sends
`store: false`), so the bridge prepends that response's input and output. `generate: false` (a warm-up)
prepares such a chain and is answered here, without an upstream call. Responses run one at a time, in the
order their messages arrived.
"""

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard_edge import inbound
from switchboard_edge.admission import Admissions
from switchboard_edge.errors import ClientFormat, InvalidRequest, ServiceUnavailable, SwitchboardError, render
from switchboard_edge.exchange import CLIENT_CLOSED_STATUS, Endpoint
from switchboard_edge.relay import Relay
from switchboard_edge.sse import SSEDecoder

log = logging.getLogger(__name__)

# Handshake headers that describe the WebSocket itself, not the request the relay sees.
_HANDSHAKE_ONLY = frozenset({b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version",
                             b"sec-websocket-extensions", b"sec-websocket-protocol", b"content-length",
                             b"content-type", b"openai-beta"})
# Headers of a refused response worth handing on in a wrapped error (Codex reads rate limits from them).
_ERROR_HEADER_PREFIXES = ("x-codex-", "x-ratelimit-")
_ERROR_HEADERS = frozenset({"retry-after", "x-should-retry"})
_CHAIN_EVENTS = frozenset({"response.created", "response.output_item.done", "response.completed",
                           "response.incomplete", "response.failed", "error"})
_GOING_AWAY = 1001


class Chain:
    """This connection's last response, so that the next may continue it with only new input."""

    def __init__(self) -> None:
        self.last_id = ""
        self.history: list[Any] = []

    def expand(self, body: dict[str, Any]) -> None:
        """Replaces a `previous_response_id` naming the last response with that response's items."""
        previous = body.get("previous_response_id")
        if previous and previous == self.last_id:
            del body["previous_response_id"]
            body["input"] = [*self.history, *_items(body.get("input"))]

    def remember(self, response_id: str, body: dict[str, Any], output: list[Any]) -> None:
        self.last_id = response_id
        self.history = [*_items(body.get("input")), *output]

    def forget(self) -> None:
        self.last_id, self.history = "", []


def _items(value: Any) -> list[Any]:
    """A Responses `input` as a list of items (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else [value]


def _wrapped_error(status: int, error: Any, headers: dict[str, str] | None = None) -> bytes:
    message: dict[str, Any] = {"type": "error", "status": status, "error": error}
    if headers:
        message["headers"] = headers
    return orjson.dumps(message)


def _gateway_error(error: SwitchboardError) -> bytes:
    _, payload, _ = render(error, ClientFormat.RESPONSES)
    return _wrapped_error(error.status, orjson.loads(payload)["error"])


class ResponsesSockets:
    """The open Responses WebSockets of this edge: served one each, closed when the edge drains."""

    def __init__(self, relay: Relay, admission: Admissions, max_message_bytes: int) -> None:
        self._relay = relay
        self._admission = admission
        self._max_message_bytes = max_message_bytes
        self._open: set[ResponsesSocket] = set()

    async def serve(self, websocket: WebSocket, endpoint: Endpoint) -> None:
        client = self._relay.client_metadata(websocket.client.host if websocket.client else "", websocket.headers,
                                             endpoint)
        client.request_id = uuid.uuid4().hex
        try:
            if self._relay.draining:
                raise ServiceUnavailable("The gateway is restarting; reconnect.", retry_after=1.0)
            await self._admission.authenticate(inbound.extract_key(websocket.headers), client)
        except SwitchboardError as error:
            await _deny(websocket, error)
            return
        await websocket.accept()
        socket = ResponsesSocket(websocket, self._relay, endpoint, self._max_message_bytes)
        self._open.add(socket)
        try:
            await socket.run()
        finally:
            self._open.discard(socket)

    def drain(self) -> None:
        """Idle sockets close now, busy ones once their response has ended (the relay bounds that)."""
        for socket in self._open:
            socket.close_when_idle()


async def _deny(websocket: WebSocket, error: SwitchboardError) -> None:
    status, payload, headers = render(error, ClientFormat.RESPONSES)
    try:
        await websocket.send_denial_response(Response(payload, status, headers))
    except RuntimeError:  # the server cannot send an HTTP answer to a handshake: close it instead
        await websocket.close(code=1008, reason=error.message[:120])


class ResponsesSocket:
    """One client connection: reads messages as they come, answers them one at a time."""

    def __init__(self, websocket: WebSocket, relay: Relay, endpoint: Endpoint, max_message_bytes: int) -> None:
        self._ws = websocket
        self._relay = relay
        self._endpoint = endpoint
        self._max_message_bytes = max_message_bytes
        self._chain = Chain()
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._busy = False
        self._closing = False
        # The handshake's headers, minus those about the WebSocket itself, for each relayed request.
        self._headers = [(name, value) for name, value in websocket.scope["headers"]
                         if name.lower() not in _HANDSHAKE_ONLY]
        self._headers.append((b"content-type", b"application/json"))

    async def run(self) -> None:
        reader = asyncio.get_running_loop().create_task(self._read())
        try:
            while not self._closing:
                message = await self._inbox.get()
                if message is None:
                    break
                self._busy = True
                try:
                    await self._answer(message)
                finally:
                    self._busy = False
            if self._closing and not self._closed.is_set():
                await self._ws.close(code=_GOING_AWAY, reason="The gateway is restarting; reconnect.")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away while being answered
        finally:
            self._closed.set()
            reader.cancel()

    def close_when_idle(self) -> None:
        self._closing = True
        if not self._busy:
            self._inbox.put_nowait(None)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text, data = message.get("text"), message.get("bytes")
                self._inbox.put_nowait(text if text is not None else data)
        finally:
            self._closed.set()
            self._inbox.put_nowait(None)

    async def _send(self, payload: bytes) -> None:
        await self._ws.send_text(payload.decode())

    # -- one response ----------------------------------------------------------------

    async def _answer(self, message: str | bytes) -> None:
        try:
            body = self._request_body(message)
        except SwitchboardError as error:
            await self._send(_gateway_error(error))
            return
        if body.pop("generate", True) is False:
            await self._warm_up(body)
            return
        self._chain.expand(body)
        raw = orjson.dumps(body)
        response = await self._relay.handle(self._request(raw), self._endpoint)
        if isinstance(response, StreamingResponse):
            await self._relay_events(response, body)
        elif response.status_code != CLIENT_CLOSED_STATUS:
            await self._send_answer(response, body)

    def _request_body(self, message: str | bytes) -> dict[str, Any]:
        if isinstance(message, bytes):
            raise InvalidRequest("Send response.create messages as text frames.")
        if len(message) > self._max_message_bytes:
            raise InvalidRequest(f"The message exceeds the limit of {self._max_message_bytes} bytes.")
        try:
            body = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The message is not valid JSON.") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The message must be a JSON object.")
        kind = body.pop("type", None)
        if kind != "response.create":
            raise InvalidRequest(f"Unsupported message type '{inbound.shown(str(kind))}'; send response.create.")
        body.pop("background", None)  # transport fields have no meaning here
        body["stream"] = True
        return body

    def _request(self, raw: bytes) -> Request:
        """The message as the HTTP request the relay serves: the handshake's path, query and headers."""
        scope = dict(self._ws.scope)
        scope.update(type="http", method="POST", http_version="1.1",
                     headers=[*self._headers, (b"content-length", str(len(raw)).encode())])
        delivered = False
        closed = self._closed

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await closed.wait()
            return {"type": "http.disconnect"}

        return Request(scope, receive)

    async def _relay_events(self, response: StreamingResponse, body: dict[str, Any]) -> None:
        """Sends each event as a message; stops (and the relay settles) when the client goes away."""
        pump = asyncio.get_running_loop().create_task(self._pump(response, body))
        gone = asyncio.get_running_loop().create_task(self._closed.wait())
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not pump.done():
                pump.cancel()
            try:
                await pump
            except (asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                pass
            finally:
                await _close_stream(response)

    async def _pump(self, response: StreamingResponse, body: dict[str, Any]) -> None:
        decoder = SSEDecoder()
        output: list[Any] = []
        response_id = ""
        self._chain.forget()
        async for chunk in response.body_iterator:
            for event in decoder.feed(chunk if isinstance(chunk, bytes) else str(chunk).encode()):
                data = event.data
                if not data:
                    continue
                await self._send(data)
                if event.name not in _CHAIN_EVENTS:
                    continue
                name = event.name
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if name == "response.output_item.done" and isinstance(parsed.get("item"), dict):
                    output.append(parsed["item"])
                    continue
                answer = parsed.get("response")
                if name == "response.created" and isinstance(answer, dict):
                    response_id = str(answer.get("id") or "")
                elif name in ("response.completed", "response.incomplete") and isinstance(answer, dict):
                    final = answer.get("output")
                    self._chain.remember(str(answer.get("id") or response_id), body,
                                         final if isinstance(final, list) and final else output)

    async def _send_answer(self, response: Response, body: dict[str, Any]) -> None:
        """A whole answer instead of a stream: an error before the first byte, or an upstream that did not stream."""
        self._chain.forget()
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            payload = None
        status = response.status_code
        if status < 400 and isinstance(payload, dict):
            self._chain.remember(str(payload.get("id") or ""), body, list(payload.get("output") or []))
            await self._send(orjson.dumps({"type": "response.completed", "response": payload}))
            return
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            error = {"message": bytes(response.body).decode(errors="replace")[:2000] or f"HTTP {status}"}
        headers = {name: value for name, value in response.headers.items()
                   if name in _ERROR_HEADERS or name.startswith(_ERROR_HEADER_PREFIXES)}
        await self._send(_wrapped_error(status, error, headers))

    async def _warm_up(self, body: dict[str, Any]) -> None:
        """`generate: false`: no model output, only a response id the next turn can continue from."""
        self._chain.expand(body)
        response_id = f"resp_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"
        answer: dict[str, Any] = {"id": response_id, "object": "response", "created_at": int(time.time()),
                                  "status": "in_progress", "model": body.get("model"), "output": [],
                                  "usage": None, "error": None, "incomplete_details": None}
        await self._send(orjson.dumps({"type": "response.created", "sequence_number": 0, "response": answer}))
        done = {**answer, "status": "completed"}
        await self._send(orjson.dumps({"type": "response.completed", "sequence_number": 1, "response": done}))
        self._chain.remember(response_id, body, [])


async def _close_stream(response: StreamingResponse) -> None:
    """Ends a relayed stream that was not read to its end, so that it settles now."""
    close = getattr(response.body_iterator, "aclose", None)
    if close is not None:
        await close()
    settle = getattr(response, "settle", None)
    if settle is not None:
        settle()
