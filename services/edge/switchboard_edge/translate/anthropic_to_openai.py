"""Anthropic Messages client (Claude Code, the anthropic SDK) served by an OpenAI chat platform (openai,
azure-openai).

Request fields (Anthropic Messages → Chat Completions):

- `model`: replaced by `target.model` (the platform maps it to the account's model or deployment)
- `system` (string or text blocks): the first `system` message (blocks as text parts; `cache_control` consumed)
- `messages`: see the block table below
- `max_tokens`: `max_completion_tokens` (accepted by every current chat model; reasoning models refuse
  `max_tokens`)
- `temperature`, `top_p`: passed (Anthropic's 0–1 range fits OpenAI's)
- `top_k`: 400 (OpenAI has no top-k sampling)
- `stop_sequences`: `stop` (empty: nothing); more than 4: 400 (OpenAI's limit). OpenAI's reasoning models refuse
  `stop`; their 400 reaches the client in Anthropic's format
- `stream`: replaced by `target.stream`, with `stream_options: {include_usage: true}` so the final usage is known
- `metadata.user_id`: `user`; one longer than OpenAI's 64-character limit (Claude Code's JSON with device, account
  and session ids) goes as its SHA-256 hex digest (64 characters: the same user gives the same value, and OpenAI
  only uses it as an opaque end-user id); other metadata keys: 400 (Anthropic takes none)
- `tools` (custom: no `type`, or `type: custom`): `{type: function, function: {name, description, parameters:
  input_schema}}`; `cache_control`, `defer_loading`, `input_examples`, `strict` consumed (OpenAI receives every tool
  up front, caches prompts by itself and has no per-tool examples); `tool_search_tool_*` tools consumed: with every
  tool sent directly there is nothing to search; other server tools (`web_search_*`, `bash_*`, `text_editor_*`,
  `computer_*`, `code_execution_*`, `web_fetch_*`, `memory_*`, …): 400 naming the type (Anthropic runs those)
- `tool_choice`: `auto`→`auto`, `any`→`required`, `tool`→`{type: function, function: {name}}`, `none`→`none`;
  `disable_parallel_tool_use: true` → `parallel_tool_calls: false` (only with tools: OpenAI refuses it without)
- `thinking` `enabled`: `reasoning_effort` via `anthropic_defaults.effort_for_budget` (`xhigh` sent as `high`, which
  every reasoning model takes); `adaptive`: `medium`; `disabled`: nothing. Only reasoning models (o1*, o3*, o4*,
  gpt-5*) take `reasoning_effort`; for any other model the thinking request is consumed (the model cannot think)
- `output_config.effort` (`low`/`medium`/`high`/`max`): `reasoning_effort` (max → high), for reasoning models only,
  ahead of `thinking`; `output_config.format` / `output_format` `json_schema`: `response_format` `json_schema`
  (name `output`, `strict: false`: OpenAI's strict mode demands schema rules Anthropic's does not)
- `context_management`: consumed: Anthropic's server-side clearing of old tool results has no OpenAI counterpart;
  the conversation goes whole
- `cache_control` (top level or on any block): consumed: OpenAI caches long prompt prefixes automatically
- `service_tier`: `auto`→`auto`, `standard_only`→`default`
- `container`, `mcp_servers`: 400 (Anthropic's code-execution containers and MCP connector run at Anthropic)
- anything else: 400 naming the field

Message blocks:

- `text` → text (in a user message a text part; in an assistant message the joined `content` string)
- `image` base64 → `image_url` data URL; url → `image_url` url; file → 400
- `document` base64 PDF → `file` part with `file_data` (a data URL); text source → a text part; others → 400
- `tool_use` (assistant) → `tool_calls` entry (id kept, `input` as a JSON string)
- `tool_result` (user) → a `tool` message (`tool_call_id` = `tool_use_id`) before the rest of that user turn; text
  content as a string or text parts; `is_error: true` → the text starts with "Error: " (OpenAI has no error flag);
  images in a tool result cannot go in a tool message: they follow in a user message right after the tool
  messages, introduced by a text part naming the tool call
- `thinking`, `redacted_thinking` (assistant) → dropped: that is reasoning signed by another platform and chat
  completions have no field to carry it
- `server_tool_use`, `web_search_tool_result`, `search_result`, other types → 400 naming the type
- a `system` role inside `messages` (Claude Code sends one) → a `system` message at that point

Headers: none are passed. `anthropic-beta` and `anthropic-version` are consumed: they select Anthropic API
behaviours (the beta fields above are handled field by field); the anthropic SDK's `x-stainless-*` describe it, not
an OpenAI client.

Answers (`chat.completion` → Anthropic message): id `msg_<completion id without chatcmpl->`; `reasoning_content`
(DeepSeek-style upstreams) → a `thinking` block first (empty signature: nothing signed it); `content` → a text
block; `refusal` → a text block and stop_reason `refusal`; `tool_calls` → `tool_use` blocks (arguments parsed; a
non-object is wrapped as `{"arguments": <text>}`). finish_reason: stop→end_turn, length→max_tokens,
tool_calls/function_call→tool_use, content_filter→refusal. Usage: input_tokens = prompt_tokens − cached,
cache_read_input_tokens = `prompt_tokens_details.cached_tokens`, cache_creation_input_tokens 0, output_tokens =
completion_tokens.

Streams: the first chunk → `message_start` (input_tokens = `target.input_estimate`, output_tokens 1);
`reasoning_content` deltas → a `thinking` block; `content`/`refusal` → a `text` block; each tool call → a
`tool_use` block (`input: {}`) whose argument fragments are `input_json_delta`s. One block is open at a time; a
call that starts while another call's arguments are still incomplete is buffered and sent whole after it.
finish_reason → blocks closed; the usage chunk (after it) → `message_delta` with the real usage; `[DONE]` →
`message_delta` (if the usage chunk never came) then `message_stop`. An in-stream `error` → Anthropic's `error`
event.
"""

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import anthropic_defaults, error_bodies
from switchboard_edge.translate.base import (
    Conversion,
    StreamConverter,
    Target,
    Translator,
    named_event,
    parsed,
)

_CONSUMED = frozenset({"model", "messages", "stream", "context_management", "cache_control"})
_HANDLED = frozenset({"system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "metadata",
                      "tools", "tool_choice", "thinking", "output_config", "output_format", "service_tier",
                      "container", "mcp_servers"})
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}
_MAX_STOP = 4
_MAX_USER = 64
_FINISH_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "function_call": "tool_use", "content_filter": "refusal"}
# OpenAI error types/codes (in-stream `error` chunks) → the HTTP status they stand for.
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "invalid_api_key": 401,
                 "permission_error": 403, "not_found_error": 404, "model_not_found": 404,
                 "rate_limit_error": 429, "rate_limit_exceeded": 429, "insufficient_quota": 429,
                 "server_error": 500, "service_unavailable": 503}


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _texts(content: Any, where: str) -> list[dict[str, Any]]:
    """Text parts of a `system` value or a system message (string or text blocks)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _refuse(f"'{where}' must be a string or an array of text blocks.")
    parts = []
    for number, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _refuse(f"'{where}.{number}' must be a text block.")
        if block["text"]:
            parts.append({"type": "text", "text": block["text"]})
    return parts


def _as_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text part as a plain string (what most OpenAI-compatible servers read best)."""
    return parts[0]["text"] if len(parts) == 1 and parts[0]["type"] == "text" else parts


def _image(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source: Any = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _refuse(f"'{where}.source': image source type {kind!r} cannot be sent to an OpenAI model.")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source: Any = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and source.get("media_type") == "application/pdf":
        title = block.get("title")
        return {"type": "file", "file": {"filename": title if isinstance(title, str) and title else "document.pdf",
                                         "file_data": f"data:application/pdf;base64,{source.get('data')}"}}
    if kind == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    raise _refuse(f"'{where}.source': document source type {kind!r} cannot be sent to an OpenAI model "
                  "(base64 PDF and text documents can).")


def _tool_result(block: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `tool` message for a tool_result, and the images it held (sent after in a user message)."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise _refuse(f"'{where}.tool_use_id' is required.")
    content = block.get("content")
    prefix = "Error: " if block.get("is_error") else ""
    images: list[dict[str, Any]] = []
    if content is None or isinstance(content, str):
        result: str | list[dict[str, Any]] = prefix + (content or "")
    elif isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for number, item in enumerate(content):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text" and isinstance(item.get("text"), str):
                parts.append({"type": "text", "text": item["text"]})
            elif kind == "image":
                images.append(_image(item, f"{where}.content.{number}"))
            elif kind == "document":
                part = _document(item, f"{where}.content.{number}")
                (parts if part["type"] == "text" else images).append(part)
            else:
                raise _refuse(f"'{where}.content.{number}': {kind!r} blocks in a tool result cannot be sent to an "
                              "OpenAI model.")
        if prefix:
            parts.insert(0, {"type": "text", "text": prefix.strip()})
        result = _as_content(parts) if parts else ""
    else:
        raise _refuse(f"'{where}.content' must be a string or an array of blocks.")
    return {"role": "tool", "tool_call_id": call_id, "content": result}, images


def _user(content: Any, where: str, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    if not isinstance(content, list):
        raise _refuse(f"'{where}.content' must be a string or an array of blocks.")
    parts: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []  # images from tool results
    for number, block in enumerate(content):
        at = f"{where}.content.{number}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            if block["text"]:
                parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "document":
            parts.append(_document(block, at))
        elif kind == "tool_result":
            message, images = _tool_result(block, at)
            out.append(message)
            if images:
                late.append({"type": "text", "text": f"Images returned by tool call {message['tool_call_id']}:"})
                late.extend(images)
        else:
            raise _refuse(f"'{at}': {kind!r} blocks cannot be sent to an OpenAI model.")
    if late or parts:
        out.append({"role": "user", "content": _as_content([*late, *parts])})


def _assistant(content: Any, where: str, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        if content:
            out.append({"role": "assistant", "content": content})
        return
    if not isinstance(content, list):
        raise _refuse(f"'{where}.content' must be a string or an array of blocks.")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for number, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _refuse(f"'{where}.content.{number}': a tool_use block needs an id and a name.")
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"],
                                       "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise _refuse(f"'{where}.content.{number}': {kind!r} blocks cannot be sent to an OpenAI model.")
    text = "".join(texts)
    if not text and not calls:
        return
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    out.append(message)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _refuse("'tools' must be an array.")
    out = []
    for number, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _refuse(f"'tools.{number}' must be an object.")
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith("tool_search_tool"):
            continue
        if kind not in (None, "custom"):
            raise _refuse(f"'tools.{number}': the server tool {kind!r} runs at Anthropic and cannot be used with an "
                          "OpenAI model.")
        if not isinstance(tool.get("name"), str):
            raise _refuse(f"'tools.{number}.name' is required.")
        function: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        schema = tool.get("input_schema")
        function["parameters"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> tuple[Any, bool]:
    """(OpenAI tool_choice or None, whether parallel calls are off)."""
    if choice is None:
        return None, False
    kind = choice.get("type") if isinstance(choice, dict) else None
    parallel_off = bool(choice.get("disable_parallel_tool_use")) if isinstance(choice, dict) else False
    if kind == "auto":
        return "auto", parallel_off
    if kind == "any":
        return "required", parallel_off
    if kind == "none":
        return "none", False
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel_off
    raise _refuse(f"'tool_choice' {choice!r} is not a valid tool choice.")


def _effort(body: Mapping[str, Any]) -> str | None:
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if isinstance(effort, str):
        if effort not in _EFFORTS:
            raise _refuse(f"'output_config.effort' {effort!r} is not a known effort.")
        return _EFFORTS[effort]
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int):
            raise _refuse("'thinking.budget_tokens' must be an integer.")
        return _EFFORTS[anthropic_defaults.effort_for_budget(budget)]
    if kind == "adaptive":
        return "medium"
    if kind == "disabled":
        return None
    raise _refuse(f"'thinking.type' {kind!r} is not a known thinking type.")


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    if spec is None:
        spec = body.get("output_format")
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "json_schema" or not isinstance(spec.get("schema"), dict):
        raise _refuse("'output_config.format' must be {type: json_schema, schema: {...}}.")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": spec["schema"], "strict": False}}


class AnthropicToOpenAI(Translator):
    client = ClientFormat.ANTHROPIC
    upstream = ClientFormat.OPENAI

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        for name in body:
            if name not in _HANDLED and name not in _CONSUMED:
                raise _refuse(f"{name}: Extra inputs are not permitted when this model is served by OpenAI.")
        for name in ("container", "mcp_servers"):
            if body.get(name):
                raise _refuse(f"{name}: runs at Anthropic and cannot be used with an OpenAI model.")
        if body.get("top_k") is not None:
            raise _refuse("top_k: OpenAI models have no top-k sampling.")
        messages: list[dict[str, Any]] = []
        system = body.get("system")
        if system is not None:
            parts = _texts(system, "system")
            if parts:
                messages.append({"role": "system", "content": _as_content(parts)})
        conversation = body.get("messages")
        if not isinstance(conversation, list) or not conversation:
            raise _refuse("messages: at least one message is required.")
        for number, message in enumerate(conversation):
            where = f"messages.{number}"
            role = message.get("role") if isinstance(message, dict) else None
            if role == "user":
                _user(message.get("content"), where, messages)
            elif role == "assistant":
                _assistant(message.get("content"), where, messages)
            elif role == "system":
                parts = _texts(message.get("content"), f"{where}.content")
                if parts:
                    messages.append({"role": "system", "content": _as_content(parts)})
            else:
                raise _refuse(f"{where}.role: Input should be 'user' or 'assistant'.")
        out: dict[str, Any] = {"model": target.model, "messages": messages}
        max_tokens = body.get("max_tokens")
        if max_tokens is not None:
            out["max_completion_tokens"] = max_tokens
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
        stop = body.get("stop_sequences")
        if stop:
            if not isinstance(stop, list) or len(stop) > _MAX_STOP:
                raise _refuse(f"stop_sequences: an OpenAI model takes at most {_MAX_STOP} stop sequences.")
            out["stop"] = stop
        tools = _tools(body["tools"]) if body.get("tools") is not None else []
        if tools:
            out["tools"] = tools
            choice, parallel_off = _tool_choice(body.get("tool_choice"))
            if choice is not None:
                out["tool_choice"] = choice
            if parallel_off:
                out["parallel_tool_calls"] = False
        elif body.get("tool_choice") is not None:
            choice, _ = _tool_choice(body["tool_choice"])
            if choice not in ("auto", "none"):
                raise _refuse("tool_choice: a tool call is required but no tools are given.")
        effort = _effort(body)
        if effort is not None and _REASONING_MODEL.match(target.model):
            out["reasoning_effort"] = effort
        response_format = _response_format(body)
        if response_format is not None:
            out["response_format"] = response_format
        metadata = body.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
                raise _refuse("metadata: only 'user_id' is accepted.")
            user = metadata.get("user_id")
            if isinstance(user, str) and user:
                out["user"] = user if len(user) <= _MAX_USER else hashlib.sha256(user.encode()).hexdigest()
        tier = body.get("service_tier")
        if tier is not None:
            if not isinstance(tier, str) or tier not in _SERVICE_TIERS:
                raise _refuse(f"service_tier: {tier!r} is not a known service tier (auto, standard_only).")
            out["service_tier"] = _SERVICE_TIERS[tier]
        out["stream"] = target.stream
        if target.stream:
            out["stream_options"] = {"include_usage": True}
        return Conversion(out, {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        choices = body.get("choices")
        choice: Any = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message: Any = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content: list[dict[str, Any]] = []
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            content.append({"type": "text", "text": refusal})
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                            "input": _arguments(function.get("arguments"))})
        finish = choice.get("finish_reason")
        stop_reason = _FINISH_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
        if isinstance(refusal, str) and refusal:
            stop_reason = "refusal"
        elif stop_reason == "end_turn" and any(block["type"] == "tool_use" for block in content):
            stop_reason = "tool_use"
        return {"id": _message_id(body.get("id")), "type": "message", "role": "assistant", "model": target.model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": _usage(body.get("usage"))}

    def stream(self, target: Target) -> StreamConverter:
        return ChatToAnthropicStream(target)


def _arguments(arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": arguments}


def _message_id(completion_id: Any) -> str:
    if isinstance(completion_id, str) and completion_id:
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return "msg_" + orjson.dumps(time.time_ns()).decode()


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) else 0
    completion = usage.get("completion_tokens") if isinstance(usage.get("completion_tokens"), int) else 0
    return {"input_tokens": max(0, prompt - cached), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": completion}


class _Call:
    __slots__ = ("id", "name", "arguments", "block")

    def __init__(self, call_id: str, name: str) -> None:
        self.id = call_id
        self.name = name
        self.arguments: list[str] = []
        # The Anthropic block index once the call's block is open (None while buffered).
        self.block: int | None = None


class ChatToAnthropicStream(StreamConverter):
    """`chat.completion.chunk`s → Anthropic Messages events, as Claude Code needs them."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._started = False
        self._done = False
        self._next_index = 0
        # The open block: "text", "thinking" or a tool call's OpenAI index (int); None when none is open.
        self._open: str | int | None = None
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._refused = False
        self._usage: dict[str, Any] | None = None
        self._delta_sent = False

    def _start(self, chunk: Mapping[str, Any]) -> list[SSEEvent]:
        if self._started:
            return []
        self._started = True
        known = chunk.get("usage")
        if isinstance(known, dict) and isinstance(known.get("prompt_tokens"), int):
            usage = {**_usage(known), "output_tokens": 1}
        else:
            usage = {"input_tokens": max(self._target.input_estimate, 1), "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0, "output_tokens": 1}
        return [named_event("message_start", {"type": "message_start", "message": {
            "id": _message_id(chunk.get("id")), "type": "message", "role": "assistant", "model": self._target.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})]

    def _close(self) -> list[SSEEvent]:
        if self._open is None:
            return []
        index = self._next_index - 1
        self._open = None
        return [named_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, kind: str | int, block: dict[str, Any]) -> list[SSEEvent]:
        out = self._close()
        self._open = kind
        out.append(named_event("content_block_start", {"type": "content_block_start", "index": self._next_index,
                                                       "content_block": block}))
        self._next_index += 1
        return out

    def _delta(self, delta: dict[str, Any]) -> SSEEvent:
        return named_event("content_block_delta", {"type": "content_block_delta", "index": self._next_index - 1,
                                                   "delta": delta})

    def _text(self, kind: str, text: str) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._open != kind:
            if isinstance(self._open, int):
                out += self._flush_calls()
            block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "",
                                                                          "signature": ""}
            out += self._open_block(kind, block)
        field = "text" if kind == "text" else "thinking"
        out.append(self._delta({"type": f"{field}_delta", field: text}))
        return out

    def _open_call(self, call: _Call) -> list[SSEEvent]:
        out = self._open_block(self._index_of(call), {"type": "tool_use", "id": call.id, "name": call.name,
                                                      "input": {}})
        call.block = self._next_index - 1
        if call.arguments:
            out.append(self._delta({"type": "input_json_delta", "partial_json": "".join(call.arguments)}))
        return out

    def _index_of(self, call: _Call) -> int:
        return next(index for index, known in self._calls.items() if known is call)

    def _flush_calls(self) -> list[SSEEvent]:
        """Closes the open block and sends every call not sent yet, whole, in order."""
        out = self._close()
        for call in self._calls.values():
            if call.block is None:
                out += self._open_call(call)
                out += self._close()
        return out

    def _tool_calls(self, calls: list[Any]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for item in calls:
            if not isinstance(item, dict):
                continue
            index = item.get("index", 0)
            function: Any = item.get("function") if isinstance(item.get("function"), dict) else {}
            arguments = function.get("arguments")
            call = self._calls.get(index)
            if call is None:
                call = _Call(str(item.get("id") or f"call_{index}"), str(function.get("name") or ""))
                self._calls[index] = call
                if isinstance(arguments, str) and arguments:
                    call.arguments.append(arguments)
                buffered = any(known.block is None for known in self._calls.values() if known is not call)
                if not buffered and (self._open is None or isinstance(self._open, str) or self._complete(self._open)):
                    if isinstance(self._open, int):
                        out += self._close()
                    out += self._open_call(call)
                continue
            if not isinstance(arguments, str) or not arguments:
                continue
            call.arguments.append(arguments)
            if self._open == index:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return out

    def _complete(self, index: int) -> bool:
        """Whether the open call's arguments so far are a whole JSON value (so a new call may follow it)."""
        text = "".join(self._calls[index].arguments)
        if not text.strip():
            return True
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        return True

    def _message_delta(self) -> list[SSEEvent]:
        if self._delta_sent:
            return []
        self._delta_sent = True
        stop = _FINISH_REASONS.get(self._finish or "stop", "end_turn")
        if stop == "end_turn" and self._calls:
            stop = "tool_use"  # some OpenAI-compatible servers end a tool call with "stop"
        elif stop == "end_turn" and self._refused:
            stop = "refusal"
        if self._usage is not None:
            usage = _usage(self._usage)
        else:
            usage = {"input_tokens": max(self._target.input_estimate, 1), "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0, "output_tokens": 1}
        return [named_event("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": stop, "stop_sequence": None},
                                              "usage": usage})]

    def _end(self) -> list[SSEEvent]:
        if self._done:
            return []
        out = self._start({})
        out += self._flush_calls()
        out += self._message_delta()
        out.append(named_event("message_stop", {"type": "message_stop"}))
        self._done = True
        return out

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._done:
            return []
        if event.data == b"[DONE]":
            return self._end()
        chunk = parsed(event)
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            return self._error(chunk["error"])
        choices: Any = chunk.get("choices")
        usage = chunk.get("usage")
        has_choices = isinstance(choices, list) and bool(choices)
        if not has_choices and not isinstance(usage, dict):
            return []  # Azure's prompt_filter_results chunk and other empty chunks
        out = self._start(chunk)
        if isinstance(usage, dict):
            self._usage = usage
        for choice in choices if has_choices else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta: Any = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                out += self._text("thinking", reasoning)
            for field in ("content", "refusal"):
                text = delta.get(field)
                if isinstance(text, str) and text:
                    self._refused = self._refused or field == "refusal"
                    out += self._text("text", text)
            if isinstance(delta.get("tool_calls"), list):
                out += self._tool_calls(delta["tool_calls"])
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                out += self._flush_calls()
        if self._finish is not None and self._usage is not None:
            out += self._message_delta()
        return out

    def _error(self, error: Any) -> list[SSEEvent]:
        self._done = True
        error = error if isinstance(error, dict) else {}
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
        status = _ERROR_STATUS.get(code or "", _ERROR_STATUS.get(kind or "", 500))
        message = error.get("message") if isinstance(error.get("message"), str) else "The upstream API failed."
        return [error_bodies.stream_error(status, message, None, ClientFormat.ANTHROPIC)]

    def finish(self) -> list[SSEEvent]:
        return self._end()


TRANSLATOR = AnthropicToOpenAI()
