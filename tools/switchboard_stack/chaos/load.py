"""A bounded mixed load through the balancer, and what every client got.

Every client format (Claude messages, OpenAI chat, Responses, Gemini, and Claude on the OAuth account), stream
and not; single requests with a session id of their own and conversations of a few turns on one session id
(Claude's `x-claude-code-session-id` or `metadata.user_id`, OpenAI's `session_id`, Gemini's opening hash), their
turns `TURN_GAP` apart (replicas see each other's session bindings within about a second, as documented); some
streaming clients leave after the first events. Each request's session hint is computed with the edge's own
readers (`switchboard_edge.sessions`) so the ledger's `session_id` names it.
"""

import asyncio
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from switchboard_edge import sessions
from switchboard_stack.chaos.topology import CLAUDE_MODEL, GEMINI_MODEL, OAUTH_MODEL, OPENAI_MODEL, RESPONSES_MODEL

KINDS = ("claude", "openai", "responses", "gemini", "oauth")
TURN_GAP = 1.5
WEIGHTS = {"claude": 3, "openai": 2, "responses": 2, "gemini": 2, "oauth": 1}
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Key:
    name: str
    secret: str
    key_id: str
    rpm: int = 0


def create_key(database_url: str, name: str, *limits: str) -> Key:
    """A key made with the `switchboard keys create` CLI, e.g. `create_key(url, "k", "--rpm", "30")`."""
    result = subprocess.run(
        [sys.executable, "-m", "switchboard_auth.cli", "keys", "create", name, "--database-url", database_url,
         "--json", "--replace", *limits], capture_output=True, text=True, timeout=60, check=True)
    record = orjson.loads(result.stdout)
    rpm = int(limits[limits.index("--rpm") + 1]) if "--rpm" in limits else 0
    return Key(name, record["key"], record["key_id"], rpm)


@dataclass
class Outcome:
    """One request as its client saw it."""

    kind: str
    stream: bool
    key: str
    session: str
    conversation: bool
    started: float  # wall clock
    duration: float = 0.0
    status: int | None = None  # None: no HTTP answer (connection refused or reset, or the client's timeout)
    complete: bool = False  # a whole answer: the terminal event of a stream, or a 2xx JSON body with usage
    clean_error: bool = False  # an error in the client's protocol: an error status with its JSON, or an error event
    left: bool = False  # the client left mid-stream on purpose
    hung: bool = False  # the client's timeout ended it
    transport_error: str = ""
    retry_after: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str = ""
    phase: str = ""


@dataclass
class _Request:
    kind: str
    stream: bool
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    session: str


def _request(kind: str, stream: bool, secret: str, session_id: str, turns: list[str]) -> _Request:
    """The request of `kind` carrying the conversation `turns` (user texts; answers in between are canned)."""
    if kind in ("claude", "oauth"):
        messages: list[dict[str, Any]] = []
        for index, text in enumerate(turns):
            if index:
                messages.append({"role": "assistant", "content": "ok"})
            messages.append({"role": "user", "content": text})
        body: dict[str, Any] = {"model": OAUTH_MODEL if kind == "oauth" else CLAUDE_MODEL, "max_tokens": 64,
                                "messages": messages, "stream": stream}
        headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
        if session_id[-1] in "02468ace":  # Claude Code's header, or its metadata.user_id
            headers["x-claude-code-session-id"] = session_id
        else:
            body["metadata"] = {"user_id": orjson.dumps({"session_id": session_id}).decode()}
        return _Request(kind, stream, "/claude/v1/messages", headers, body, sessions.anthropic_session(body, headers))
    if kind == "openai":
        messages = []
        for index, text in enumerate(turns):
            if index:
                messages.append({"role": "assistant", "content": "ok"})
            messages.append({"role": "user", "content": text})
        body = {"model": OPENAI_MODEL, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        headers = {"authorization": f"Bearer {secret}", "session_id": session_id}
        return _Request(kind, stream, "/openai/v1/chat/completions", headers, body,
                        sessions.openai_session(body, headers))
    if kind == "responses":
        items: list[dict[str, Any]] = []
        for index, text in enumerate(turns):
            if index:
                items.append({"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]})
            items.append({"role": "user", "content": [{"type": "input_text", "text": text}]})
        body = {"model": RESPONSES_MODEL, "input": items, "stream": stream}
        headers = {"authorization": f"Bearer {secret}", "session_id": session_id}
        return _Request(kind, stream, "/openai/v1/responses", headers, body, sessions.responses_session(body, headers))
    contents: list[dict[str, Any]] = []
    for index, text in enumerate(turns):
        if index:
            contents.append({"role": "model", "parts": [{"text": "ok"}]})
        contents.append({"role": "user", "parts": [{"text": text}]})
    body = {"contents": contents}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    headers = {"x-goog-api-key": secret}
    return _Request(kind, stream, f"/gemini/v1beta/models/{GEMINI_MODEL}:{action}", headers, body,
                    sessions.gemini_session(body, headers))


def _usage(kind: str, data: Mapping[str, Any]) -> tuple[int, int] | None:
    """(input, output) tokens from a response body or stream event, if it carries them."""
    if kind in ("claude", "oauth"):
        usage = data.get("usage") or (data.get("message") or {}).get("usage")
        if isinstance(usage, Mapping):
            return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        return None
    if kind == "openai":
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        return None
    if kind == "responses":
        usage = data.get("usage") or (data.get("response") or {}).get("usage")
        if isinstance(usage, Mapping):
            return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        return None
    usage = data.get("usageMetadata")
    if isinstance(usage, Mapping):
        return (int(usage.get("promptTokenCount") or 0),
                int(usage.get("candidatesTokenCount") or 0) + int(usage.get("thoughtsTokenCount") or 0))
    return None


def _is_error_body(kind: str, data: Any) -> bool:
    if not isinstance(data, Mapping):
        return False
    if kind in ("claude", "oauth"):
        return data.get("type") == "error" and isinstance(data.get("error"), Mapping)
    return isinstance(data.get("error"), Mapping)


async def _read_stream(response: httpx.Response, outcome: Outcome, leave_after: int | None) -> None:
    """Reads SSE events until the stream ends; notes usage, the terminal event or an error event."""
    kind = outcome.kind
    event_name = ""
    events = 0
    finished = False
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event_name = line[6:].strip()
            continue
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        events += 1
        if leave_after is not None and events >= leave_after:
            outcome.left = True
            return
        if payload == "[DONE]":
            outcome.complete = finished
            continue
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            outcome.error = f"unparsable event {payload[:80]!r}"
            return
        if event_name == "error" or (isinstance(data, Mapping) and data.get("type") in ("error", "response.failed")
                                     ) or _is_error_body(kind, data):
            outcome.clean_error = True
            outcome.error = payload[:200]
            return
        usage = _usage(kind, data)
        if kind in ("claude", "oauth"):
            if data.get("type") == "message_start" and usage is not None:
                outcome.input_tokens = usage[0]
            elif data.get("type") == "message_delta" and usage is not None:
                outcome.output_tokens = usage[1]
            elif data.get("type") == "message_stop":
                outcome.complete = True
        elif kind == "openai":
            if usage is not None:
                outcome.input_tokens, outcome.output_tokens = usage
            if any(choice.get("finish_reason") for choice in data.get("choices") or ()):
                finished = True
        elif kind == "responses":
            if data.get("type") == "response.completed":
                if usage is not None:
                    outcome.input_tokens, outcome.output_tokens = usage
                outcome.complete = True
        else:
            if usage is not None:
                outcome.input_tokens, outcome.output_tokens = usage
            if any(candidate.get("finishReason") for candidate in data.get("candidates") or ()):
                finished = True
    if kind == "gemini":
        outcome.complete = finished


async def send(client: httpx.AsyncClient, request: _Request, outcome: Outcome, leave_after: int | None,
               timeout: float) -> None:
    """Sends one request and fills `outcome` with what came back."""
    begun = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("POST", request.path, headers={**request.headers, **_JSON},
                                     content=orjson.dumps(request.body)) as response:
                outcome.status = response.status_code
                outcome.retry_after = response.headers.get("retry-after")
                streamed = response.headers.get("content-type", "").startswith("text/event-stream")
                if response.status_code == 200 and request.stream and streamed:
                    await _read_stream(response, outcome, leave_after)
                else:
                    raw = await response.aread()
                    try:
                        data = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        outcome.error = f"unparsable body {raw[:80]!r}"
                        data = None
                    if response.status_code >= 400:
                        outcome.clean_error = _is_error_body(request.kind, data)
                        outcome.error = raw[:200].decode(errors="replace")
                    elif isinstance(data, Mapping):
                        usage = _usage(request.kind, data)
                        if usage is not None:
                            outcome.input_tokens, outcome.output_tokens = usage
                            outcome.complete = True
    except TimeoutError:
        outcome.hung = True
    except httpx.HTTPError as exc:
        outcome.transport_error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        outcome.duration = time.perf_counter() - begun


@dataclass
class Load:
    """Workers sending requests until `stop` is set; `outcomes` keeps every one. `phase()` labels new ones."""

    base_url: str
    keys: list[Key]
    workers: int = 6
    leave_rate: float = 0.1
    conversation_rate: float = 0.3
    stream_rate: float = 0.6
    timeout: float = 30.0
    pause: float = 0.0
    kinds: tuple[str, ...] = KINDS
    weights: tuple[int, ...] = tuple(WEIGHTS.values())
    seed: int | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    label: str = ""
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._random.seed(self.seed)

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self.workers * 2, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=self.timeout) as client:
            await asyncio.gather(*(self._worker(client, stop) for _ in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        rng = self._random
        while not stop.is_set():
            kind = rng.choices(self.kinds, self.weights)[0]
            key = rng.choice(self.keys)
            conversation = rng.random() < self.conversation_rate
            session_id = f"chaos-{uuid.uuid4().hex}"
            turns = [f"{session_id} turn {index}: say something" for index in range(rng.randint(2, 4))]
            for count in range(1, len(turns) + 1 if conversation else 2):
                if stop.is_set():
                    break
                if count > 1:
                    await asyncio.sleep(TURN_GAP)
                stream = rng.random() < self.stream_rate
                leave = 2 if stream and rng.random() < self.leave_rate else None
                request = _request(kind, stream, key.secret, session_id, turns[:count])
                outcome = Outcome(kind, stream, key.name, request.session, conversation, time.time(),
                                  phase=self.label)
                self.outcomes.append(outcome)
                await send(client, request, outcome, leave, self.timeout)
                if self.pause:
                    await asyncio.sleep(self.pause)
