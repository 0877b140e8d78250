"""Anthropic Messages client (Claude Code, the anthropic SDK) served by an OpenAI Responses platform.

Request fields (Anthropic Messages → Responses):

- `model`: replaced by `target.model` (the platform maps it to the account's model)
- `system` (string or text blocks): `instructions`, blocks joined by a blank line (`cache_control` consumed)
- `messages`: input items in order. `user`/`assistant` text → a `message` item (`input_text` / `output_text`
  parts); a `system` message inside `messages` (Claude Code sends one) → a `system` message item; images →
  `input_image` (base64 → data URL, url as is); `document` base64 PDF → `input_file` with a data URL, text
  document → `input_text`; `tool_use` → `function_call` (`call_id` = tool_use id, arguments = input as JSON);
  `tool_result` → `function_call_output` (string, or `input_text`/`input_image` parts; `is_error` consumed: the
  Responses API has no error flag, the result's text says what failed); `thinking` / `redacted_thinking` whose
  signature / data opens for this platform (`seal.opened`) → `reasoning` item with that `encrypted_content`
  (summary from the thinking text); any other thinking block is dropped (an OpenAI upstream would reject it);
  `cache_control` on blocks consumed; other block types (server tool blocks, search results …) → 400 naming them
- `max_tokens`: `max_output_tokens` (raised to 16, the Responses minimum)
- `thinking` `enabled`: `reasoning: {effort: anthropic_defaults.effort_for_budget(budget_tokens), summary: auto}`
  with `include: ["reasoning.encrypted_content"]`, so reasoning round-trips sealed; `adaptive`: the same with
  `output_config.effort` (else `medium`); `disabled`: no reasoning parameters
- `output_config`: `effort` → `reasoning.effort` (`max` → `xhigh`); `format` `json_schema` → `text.format`
  `{type: json_schema, name: output, schema, strict: true}`; other keys → 400. `output_format` (the older beta
  spelling) is read the same way
- `store`: always `false` (the gateway keeps nothing; reasoning travels as encrypted content)
- `temperature`: passed, except `1` (Anthropic's default, which Claude Code sends with thinking) which is consumed
  because reasoning models refuse the parameter; `top_p` passed; `top_k` → 400 (no equivalent)
- `stop_sequences` (non-empty) → 400: Responses has no stop sequences. Claude Code does not send them
- `tools`: client tools → `{type: function, name, description, parameters: input_schema, strict: false}`
  (`cache_control`, `defer_loading`, `input_examples`, `eager_input_streaming`, `strict` consumed: every tool is
  sent, OpenAI caches prefixes itself and streams arguments anyway; strict stays off since Claude tools' schemas
  need not meet OpenAI's strict-mode rules); server tools (`web_search_*`, `bash_*`, `text_editor_*`,
  `computer_*`, `code_execution_*`, …) → 400 naming the type, except the tool search tools
  (`tool_search_tool_*`), consumed: deferred tools are sent like the others, so there is nothing to search
- `tool_choice`: `auto`→`auto`, `any`→`required`, `none`→`none`, `{type: tool, name}`→`{type: function, name}`;
  `disable_parallel_tool_use: true` → `parallel_tool_calls: false`
- `metadata.user_id`: `safety_identifier` = its SHA-256 (hex, 64 characters, the field's limit); the session id
  inside it (JSON `session_id`, or `…_session_<uuid>` in older Claude Code) → `prompt_cache_key`, so one
  session's turns hit OpenAI's prompt cache. `cache_control` everywhere is consumed: OpenAI caches automatically
- `service_tier`: `auto`→`auto`, `standard_only`→`default`
- `context_management`: consumed: it selects Anthropic's server-side context editing (clearing old thinking or
  tool results), which the Responses API does not offer; the whole conversation is sent as the client has it
- `mcp_servers`, `container` (non-empty) → 400: Anthropic-hosted MCP connectors and code containers are not
  available on an OpenAI model
- `stream`: replaced by `target.stream`
- any other field → 400 naming it

Headers: `anthropic-version` and `anthropic-beta` are consumed (they select Anthropic API behaviours: betas
such as interleaved thinking or context management have no meaning to OpenAI); none are passed.

Answers: `reasoning` items → `thinking` blocks (thinking = summary texts joined, signature = sealed
`encrypted_content`); `message` `output_text` → `text` blocks (`refusal` parts → text, stop_reason `refusal`);
`function_call` → `tool_use` (input = parsed arguments). Stop reason: `incomplete` with `max_output_tokens` →
`max_tokens`, `content_filter` → `refusal`; any tool call → `tool_use`; else `end_turn`. Usage:
`input_tokens` = input − cached, `cache_read_input_tokens` = cached, `cache_creation_input_tokens` = 0.
Streams: one Anthropic block open at a time; a reasoning item with neither summary nor encrypted content (a
reasoning model's hidden reasoning when thinking was not asked for) gives no block; an item whose events
arrive while another item's block is open is buffered and replayed when that block closes.
`response.failed` / `error` → the Anthropic `error` event.
"""

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import anthropic_defaults, error_bodies, seal
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator, named_event, parsed

_KNOWN = frozenset({"model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream",
                    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
                    "container", "mcp_servers", "context_management", "output_config", "output_format"})
_TIERS = {"auto": "auto", "standard_only": "default"}
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh", "xhigh": "xhigh"}
_MIN_OUTPUT = 16
_SESSION = re.compile(r"_session_([0-9a-fA-F-]{8,})")
_INCLUDE = ["reasoning.encrypted_content"]


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _session(user_id: str) -> str | None:
    if user_id.startswith("{"):
        try:
            data = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        session = data.get("session_id") if isinstance(data, dict) else None
        return session if isinstance(session, str) and session else None
    match = _SESSION.search(user_id)
    return match.group(1) if match else None


def _image(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if not isinstance(source, dict):
        raise _bad(f"{where}.source must be an object.")
    if source.get("type") == "base64":
        return {"type": "input_image", "image_url": f"data:{source.get('media_type')};base64,{source.get('data')}",
                "detail": "auto"}
    if source.get("type") == "url":
        return {"type": "input_image", "image_url": source.get("url"), "detail": "auto"}
    raise _bad(f"{where}: image source {source.get('type')!r} is not supported on an OpenAI model.")


def _document(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if not isinstance(source, dict):
        raise _bad(f"{where}.source must be an object.")
    if source.get("type") == "base64":
        return {"type": "input_file", "filename": block.get("title") or "document.pdf",
                "file_data": f"data:{source.get('media_type')};base64,{source.get('data')}"}
    if source.get("type") == "text":
        return {"type": "input_text", "text": source.get("data", "")}
    if source.get("type") == "url":
        return {"type": "input_file", "file_url": source.get("url")}
    raise _bad(f"{where}: document source {source.get('type')!r} is not supported on an OpenAI model.")


def _result_output(content: Any, where: str) -> Any:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of blocks.")
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "input_text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image(block, f"{where}.content[{index}]"))
        elif kind == "document":
            parts.append(_document(block, f"{where}.content[{index}]"))
        else:
            raise _bad(f"{where}.content[{index}]: tool result block {kind!r} is not supported on an OpenAI model.")
    return parts


def _reasoning(signature: Any, text: str, platform: str) -> dict[str, Any] | None:
    token = seal.opened(signature, platform) if isinstance(signature, str) else None
    if token is None:
        return None
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "summary": summary, "encrypted_content": token}


def _message_items(role: str, content: Any, where: str, platform: str, items: list[dict[str, Any]]) -> None:
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        items.append({"type": "message", "role": role, "content": [{"type": text_type, "text": content}]})
        return
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or a list of blocks.")
    parts: list[dict[str, Any]] = []

    def flush() -> None:
        if parts:
            items.append({"type": "message", "role": role, "content": list(parts)})
            parts.clear()

    for index, block in enumerate(content):
        here = f"{where}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": text_type, "text": block.get("text", "")})
        elif kind == "image" and role != "assistant":
            parts.append(_image(block, here))
        elif kind == "document" and role != "assistant":
            parts.append(_document(block, here))
        elif kind == "tool_use" and role == "assistant":
            flush()
            items.append({"type": "function_call", "call_id": block.get("id"), "name": block.get("name"),
                          "arguments": orjson.dumps(block.get("input") or {}).decode()})
        elif kind == "tool_result" and role == "user":
            flush()
            items.append({"type": "function_call_output", "call_id": block.get("tool_use_id"),
                          "output": _result_output(block.get("content"), here)})
        elif kind == "thinking" and role == "assistant":
            flush()
            item = _reasoning(block.get("signature"), block.get("thinking", ""), platform)
            if item is not None:
                items.append(item)
        elif kind == "redacted_thinking" and role == "assistant":
            flush()
            item = _reasoning(block.get("data"), "", platform)
            if item is not None:
                items.append(item)
        else:
            raise _bad(f"{here}: content block {kind!r} in a {role} message is not supported on an OpenAI model.")
    flush()


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools must be an array.")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{index}] must be an object.")
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith("tool_search_tool"):
            continue  # every tool, deferred ones included, is sent to OpenAI: nothing to search
        if kind not in (None, "custom") or "input_schema" not in tool:
            raise _bad(f"tools[{index}]: the Anthropic server tool {kind!r} cannot run on an OpenAI model.")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad(f"tools[{index}].name must be a non-empty string.")
        function: dict[str, Any] = {"type": "function", "name": tool["name"], "parameters": tool["input_schema"],
                                    "strict": False}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append(function)
    return out


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        raise _bad("tool_choice must be an object.")
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "name": choice.get("name")}
    else:
        raise _bad(f"tool_choice: type {kind!r} is not supported on an OpenAI model.")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _output_config(config: Any, name: str) -> tuple[str | None, dict[str, Any] | None]:
    if config is None:
        return None, None
    if not isinstance(config, dict):
        raise _bad(f"{name} must be an object.")
    effort, text_format = None, None
    for key, value in config.items():
        if key == "effort" and value is not None:
            if not isinstance(value, str) or value not in _EFFORTS:
                raise _bad(f"{name}.effort: {value!r} is not supported on an OpenAI model.")
            effort = _EFFORTS[value]
        elif key == "format" and value is not None:
            text_format = _format(value, f"{name}.format")
        elif key == "type" and name == "output_format":
            text_format = _format(config, name)
        elif key != "schema" or name != "output_format":
            if value is not None:
                raise _bad(f"{name}.{key} is not supported on an OpenAI model.")
    return effort, text_format


def _format(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, dict) and value.get("type") == "json_schema" and isinstance(value.get("schema"), dict):
        return {"type": "json_schema", "name": "output", "schema": value["schema"], "strict": True}
    raise _bad(f"{name}: only a json_schema format is supported on an OpenAI model.")


class AnthropicToResponses(Translator):
    client = ClientFormat.ANTHROPIC
    upstream = ClientFormat.RESPONSES

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        for name in body:
            if name not in _KNOWN:
                raise _bad(f"{name}: this field is not supported when an OpenAI model serves the Messages API.")
        if body.get("stop_sequences"):
            raise _bad("stop_sequences: the OpenAI Responses API has no stop sequences.")
        if body.get("top_k") is not None:
            raise _bad("top_k is not supported on an OpenAI model.")
        for name in ("mcp_servers", "container"):
            if body.get(name):
                raise _bad(f"{name}: Anthropic-hosted MCP servers and containers are not available on an OpenAI "
                           "model.")
        out: dict[str, Any] = {"model": target.model}
        system = body.get("system")
        if isinstance(system, str) and system:
            out["instructions"] = system
        elif isinstance(system, list) and system:
            texts = [block.get("text", "") for block in system if isinstance(block, dict)]
            if not all(isinstance(text, str) for text in texts):
                raise _bad("system: each block's text must be a string.")
            out["instructions"] = "\n\n".join(texts)
        items: list[dict[str, Any]] = []
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise _bad("messages must be a list.")
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant", "system"):
                raise _bad(f"messages[{index}].role {role!r} is not supported.")
            _message_items("user" if role == "system" else role, message.get("content"), f"messages[{index}]",
                           target.platform, items)
            if role == "system" and items and items[-1].get("type") == "message":
                items[-1]["role"] = "system"
        out["input"] = items
        if body.get("max_tokens") is not None:
            if not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool):
                raise _bad("max_tokens must be an integer.")
            out["max_output_tokens"] = max(body["max_tokens"], _MIN_OUTPUT)
        effort, text_format = _output_config(body.get("output_config"), "output_config")
        if body.get("output_format") is not None:
            _, text_format = _output_config(body["output_format"], "output_format")
        thinking = body.get("thinking")
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind == "enabled":
            budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
            effort = effort or anthropic_defaults.effort_for_budget(budget if isinstance(budget, int) else 0)
        elif kind == "adaptive":
            effort = effort or "medium"
        elif kind not in (None, "disabled"):
            raise _bad(f"thinking: type {kind!r} is not supported on an OpenAI model.")
        if effort is not None and kind != "disabled":
            out["reasoning"] = {"effort": effort, "summary": "auto"}
            out["include"] = _INCLUDE
        if text_format is not None:
            out["text"] = {"format": text_format}
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            out["temperature"] = temperature
        if body.get("top_p") is not None:
            out["top_p"] = body["top_p"]
        if body.get("tools"):
            out["tools"] = _tools(body["tools"])
        if body.get("tool_choice") is not None:
            _tool_choice(body["tool_choice"], out)
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user_id, str) and user_id:
            out["safety_identifier"] = hashlib.sha256(user_id.encode()).hexdigest()
            session = _session(user_id)
            if session is not None:
                out["prompt_cache_key"] = session
        tier = body.get("service_tier")
        if tier is not None:
            if not isinstance(tier, str) or tier not in _TIERS:
                raise _bad(f"service_tier: {tier!r} is not supported on an OpenAI model.")
            out["service_tier"] = _TIERS[tier]
        out["store"] = False
        out["stream"] = target.stream
        return Conversion(out, {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        refused = False
        for item in body.get("output") or []:
            kind = item.get("type")
            if kind == "reasoning":
                block = _thinking(item, target.platform)
                if block is not None:
                    content.append(block)
            elif kind == "message":
                for part in item.get("content") or []:
                    if part.get("type") == "output_text":
                        content.append({"type": "text", "text": part.get("text", "")})
                    elif part.get("type") == "refusal":
                        refused = True
                        content.append({"type": "text", "text": part.get("refusal", "")})
            elif kind in ("function_call", "custom_tool_call"):
                content.append(_tool_use(item))
        tools = any(block["type"] == "tool_use" for block in content)
        return {"id": _message_id(body.get("id")), "type": "message", "role": "assistant", "model": target.model,
                "content": content, "stop_reason": _stop_reason(body, tools, refused), "stop_sequence": None,
                "usage": _usage(body.get("usage"))}

    def stream(self, target: Target) -> StreamConverter:
        return _Stream(target)


def _message_id(response_id: Any) -> str:
    text = response_id if isinstance(response_id, str) else "0"
    return f"msg_{text.removeprefix('resp_')}"


def _summary(item: Mapping[str, Any]) -> str:
    return "\n\n".join(part.get("text", "") for part in item.get("summary") or [] if isinstance(part, dict))


def _thinking(item: Mapping[str, Any], platform: str) -> dict[str, Any] | None:
    token = item.get("encrypted_content")
    text = _summary(item)
    if not isinstance(token, str) and not text:
        return None
    return {"type": "thinking", "thinking": text,
            "signature": seal.sealed(platform, token) if isinstance(token, str) else ""}


def _tool_use(item: Mapping[str, Any]) -> dict[str, Any]:
    if item.get("type") == "custom_tool_call":
        payload: Any = {"input": item.get("input", "")}
    else:
        try:
            payload = orjson.loads(item.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            payload = {}
    return {"type": "tool_use", "id": item.get("call_id"), "name": item.get("name"), "input": payload}


def _stop_reason(response: Mapping[str, Any], tools: bool, refused: bool) -> str:
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if response.get("status") == "incomplete" and reason == "max_output_tokens":
        return "max_tokens"
    if reason == "content_filter" or refused:
        return "refusal"
    return "tool_use" if tools else "end_turn"


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("input_tokens_details")
    cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
    return {"input_tokens": max(_count(usage, "input_tokens") - cached, 0), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": _count(usage, "output_tokens")}


class _Stream(StreamConverter):
    """Responses events → Anthropic events, one block open at a time (other items' events wait their turn)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.started = False
        self.ended = False
        self.index = 0  # the next Anthropic block index
        self.current: int | None = None  # output_index of the item whose events pass now
        self.open: str | None = None  # the open block's type
        self.queued: dict[int, list[dict[str, Any]]] = {}
        self.streamed_arguments = False
        self.summary_parts = 0
        self.reasoning = False  # a reasoning item is current
        self.tools = False
        self.refused = False

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self.ended:
            return []
        data = parsed(event)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.name
        events: list[SSEEvent] = []
        if not self.started and kind not in ("error", "response.failed"):
            response: Any = data.get("response")
            events += self._start(response if isinstance(response, dict) else {})
        if kind in ("response.created", "response.in_progress", "response.queued"):
            return events
        if kind in ("response.completed", "response.incomplete"):
            return events + self._end(data.get("response") or {})
        if kind in ("response.failed", "error"):
            return events + self._fail(data)
        output_index = data.get("output_index")
        if not isinstance(output_index, int):
            return events
        if self.current is None:
            self.current = output_index
        if output_index != self.current:
            self.queued.setdefault(output_index, []).append(data)
            return events
        return events + self._item_event(kind, data)

    def _start(self, response: Mapping[str, Any]) -> list[SSEEvent]:
        self.started = True
        usage = _usage(response.get("usage")) if isinstance(response.get("usage"), dict) else None
        usage = usage or {"input_tokens": self.target.input_estimate, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": 0, "output_tokens": 1}
        usage["input_tokens"] = usage["input_tokens"] or max(self.target.input_estimate, 1)
        usage["output_tokens"] = max(usage["output_tokens"], 1)
        message: dict[str, Any] = {"id": _message_id(response.get("id")), "type": "message", "role": "assistant",
                   "model": self.target.model, "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": usage}
        return [named_event("message_start", {"type": "message_start", "message": message})]

    def _block_start(self, block: dict[str, Any], kind: str) -> SSEEvent:
        self.open = kind
        return named_event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                   "content_block": block})

    def _delta(self, delta: dict[str, Any]) -> SSEEvent:
        return named_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                   "delta": delta})

    def _thinking_start(self) -> SSEEvent:
        return self._block_start({"type": "thinking", "thinking": "", "signature": ""}, "thinking")

    def _block_stop(self) -> list[SSEEvent]:
        if self.open is None:
            return []
        self.open = None
        event = named_event("content_block_stop", {"type": "content_block_stop", "index": self.index})
        self.index += 1
        return [event]

    def _item_event(self, kind: str, data: Mapping[str, Any]) -> list[SSEEvent]:
        found: Any = data.get("item")
        item: Mapping[str, Any] = found if isinstance(found, dict) else {}
        events: list[SSEEvent] = []
        if kind == "response.output_item.added":
            item_type = item.get("type")
            self.streamed_arguments, self.summary_parts = False, 0
            if item_type == "reasoning":
                self.reasoning = True  # its thinking block opens with its first summary text or its signature
            elif item_type in ("function_call", "custom_tool_call"):
                self.tools = True
                events.append(self._block_start({"type": "tool_use", "id": item.get("call_id"),
                                                 "name": item.get("name"), "input": {}}, "tool_use"))
        elif kind == "response.reasoning_summary_part.added" and self.reasoning:
            self.summary_parts += 1
            if self.summary_parts > 1 and self.open == "thinking":
                events.append(self._delta({"type": "thinking_delta", "thinking": "\n\n"}))
        elif kind == "response.reasoning_summary_text.delta" and self.reasoning:
            if self.open is None:
                events.append(self._thinking_start())
            events.append(self._delta({"type": "thinking_delta", "thinking": data.get("delta", "")}))
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            if kind == "response.refusal.delta":
                self.refused = True
            if self.open is None:
                events.append(self._block_start({"type": "text", "text": ""}, "text"))
            events.append(self._delta({"type": "text_delta", "text": data.get("delta", "")}))
        elif kind == "response.function_call_arguments.delta" and self.open == "tool_use":
            self.streamed_arguments = True
            events.append(self._delta({"type": "input_json_delta", "partial_json": data.get("delta", "")}))
        elif kind == "response.output_item.done":
            events += self._item_done(item)
        return events

    def _item_done(self, item: Mapping[str, Any]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        item_type = item.get("type")
        if item_type == "reasoning":
            token = item.get("encrypted_content")
            if self.open is None and (isinstance(token, str) or _summary(item)):
                events.append(self._thinking_start())
                if _summary(item):  # a summary that came only whole
                    events.append(self._delta({"type": "thinking_delta", "thinking": _summary(item)}))
            if isinstance(token, str) and self.open == "thinking":
                events.append(self._delta({"type": "signature_delta",
                                           "signature": seal.sealed(self.target.platform, token)}))
            self.reasoning = False
        elif item_type == "function_call" and self.open == "tool_use" and not self.streamed_arguments:
            arguments = item.get("arguments")
            if isinstance(arguments, str) and arguments:
                events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        elif item_type == "custom_tool_call" and self.open == "tool_use":
            partial = orjson.dumps({"input": item.get("input", "")}).decode()
            events.append(self._delta({"type": "input_json_delta", "partial_json": partial}))
        elif item_type == "message" and self.open is None:
            for part in item.get("content") or []:  # a message whose text came only whole
                text = part.get("text") or part.get("refusal") if isinstance(part, dict) else None
                if isinstance(text, str) and text:
                    events.append(self._block_start({"type": "text", "text": ""}, "text"))
                    events.append(self._delta({"type": "text_delta", "text": text}))
                    events += self._block_stop()
        events += self._block_stop()
        self.current = None
        if self.queued:
            following = min(self.queued)
            self.current = following
            for data in self.queued.pop(following):
                events += self._item_event(str(data.get("type")), data)
        return events

    def _end(self, response: Mapping[str, Any]) -> list[SSEEvent]:
        events = self._block_stop()
        while self.queued:  # items whose done never came: show what they had
            self.current = min(self.queued)
            for data in self.queued.pop(self.current):
                events += self._item_event(str(data.get("type")), data)
            events += self._block_stop()
        self.ended = True
        tools = self.tools or any(isinstance(item, dict) and item.get("type") in ("function_call", "custom_tool_call")
                                  for item in response.get("output") or [])
        usage = _usage(response.get("usage"))
        delta = {"type": "message_delta", "delta": {"stop_reason": _stop_reason(response, tools, self.refused),
                                                    "stop_sequence": None},
                 "usage": usage}
        return [*events, named_event("message_delta", delta), named_event("message_stop", {"type": "message_stop"})]

    def _fail(self, data: Mapping[str, Any]) -> list[SSEEvent]:
        self.ended = True
        error: Any = data
        if data.get("type") == "response.failed":
            response = data.get("response")
            error = response.get("error") if isinstance(response, dict) else None
        elif isinstance(data.get("error"), dict):  # the API nests it: {"type": "error", "error": {…}}
            error = data["error"]
        error = error if isinstance(error, dict) else {}
        message = error.get("message") if isinstance(error.get("message"), str) else "The upstream failed."
        code = error.get("code") if isinstance(error.get("code"), str) else None
        status = {"rate_limit_exceeded": 429, "insufficient_quota": 429, "server_error": 500,
                  "invalid_prompt": 400, "context_length_exceeded": 400}.get(code or "", 500)
        return [error_bodies.stream_error(status, str(message), code, ClientFormat.ANTHROPIC)]


TRANSLATOR = AnthropicToResponses()
