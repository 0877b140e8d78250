"""OpenAI Responses client (Codex CLI, the openai SDK's `client.responses`) served by a Claude platform.

Request fields (Responses → Anthropic Messages):

- `model`: replaced by `target.model` (the platform maps it to the account's model)
- `input` (string): one `user` message
- `input` items: see the item table below; neighbours of one role merge into one message; empty text parts
  are left out (Anthropic refuses empty text blocks), and an assistant turn holding only reasoning is left out
- `instructions`: first `system` text block
- `tools` `function`: `{name, description, input_schema: parameters}` (`strict` consumed: Claude follows the schema)
- `tools` `custom` (Codex `apply_patch` …): a tool whose input_schema is `{type: object, properties: {input: {type:
  string}}, required: [input]}`; the tool's grammar/format is appended to its description; the model's call comes
  back as a `custom_tool_call` whose `input` is that string
- `tools` `namespace` (Codex's sub-agent and MCP groups): its children as tools named `<namespace>__<name>`
  (`responses_tools`); their calls come back as `function_call`s with `namespace` set
- `tools` `web_search*`: left out (`responses_tools`: Codex offers it on every turn; the model answers without it)
- `tools` `file_search`, `code_interpreter`, `computer_use*`, `local_shell`, `image_generation`, `mcp`, …: 400
  naming the tool type: Claude cannot run Responses' built-in tools
- `tool_choice`: `auto`→auto, `required`→any, `none`→none, `{type: function/custom, name}`→`{type: tool, name}`
- `parallel_tool_calls: false`: `tool_choice.disable_parallel_tool_use: true`
- `max_output_tokens`: `max_tokens` (else `anthropic_defaults.DEFAULT_MAX_TOKENS`, raised above a thinking budget)
- `reasoning.effort`: `thinking` via `anthropic_defaults.thinking_for_effort` (none/minimal: no thinking). Not
  sent when the last assistant turn calls tools without a thinking block first (its reasoning came from another
  platform and was dropped): Anthropic refuses such a tool loop with thinking on
- `reasoning.summary` / `generate_summary`: consumed: Claude's thinking always comes back summarized and is shown as
  the reasoning summary
- `temperature`, `top_p`: passed when thinking is off (`top_p` consumed when `temperature` is also set: current
  Claude models take one of the two); with thinking on both are consumed, since Anthropic only accepts the defaults
  with thinking
- `text.format` `text`: nothing to do
- `text.format` `json_schema`: `output_config.format: {type: json_schema, schema}` (Claude's structured outputs;
  `name`, `description` and `strict` consumed: Claude always follows the schema); `json_object`: 400 (Claude needs a
  schema)
- `text.verbosity`: consumed: a length hint with no Anthropic parameter
- `prompt_cache_key`, `prompt_cache_retention`: consumed: account stickiness is the gateway's job, and Claude caches
  by prefix; instead `cache_control: {type: ephemeral}` is put on the last system block, the last tool and the last
  block of the last message, so Codex's long, stable prompt is cached
- `store`: consumed: the gateway stores nothing (the answer says `store: false`)
- `include`: `reasoning.encrypted_content` consumed (reasoning is always returned, sealed); any other value 400
- `metadata`: consumed (Anthropic's metadata takes only a user id)
- `user`, `safety_identifier`: `metadata.user_id` (safety_identifier first)
- `service_tier`: `auto`→`auto`, `default`→`standard_only`; `flex`/`priority` 400
- `truncation`: `disabled` consumed; `auto` 400 (the gateway does not drop context)
- `client_metadata`: consumed: Codex telemetry
- `background`: `false` consumed; `true` 400 (no stored background responses)
- `stream`: replaced by `target.stream`; `stream_options` consumed (obfuscation is not produced)
- `previous_response_id`, `conversation`, `prompt`: 400: the gateway keeps no conversation state nor stored prompts
- `max_tool_calls`, `top_logprobs` (> 0): 400: no Anthropic equivalent
- anything else: 400 naming the field

Input items:

- `message` role `system`/`developer`: `system` text blocks (after `instructions`)
- `message` role `user`: `user` message: `input_text`→text, `input_image`→image (data URL→base64, else url source),
  `input_file`→400
- `message` role `assistant`: `assistant` message: `output_text`/`refusal`→text
- `function_call`: assistant `tool_use` (id = `call_id`, input = the parsed `arguments`; 400 if not a JSON object)
- `custom_tool_call`: assistant `tool_use` with input `{input: <string>}`
- `function_call_output`, `custom_tool_call_output`: user `tool_result` (string output, or its text/image parts)
- `reasoning`: `encrypted_content` sealed by this platform → `thinking` block (text = joined summary texts,
  signature = the opened token) at that point of the assistant turn; unsealed or another platform's → dropped (never
  sent where Claude would reject it)
- `additional_tools`: its `tools` join the request's tools
- `item_reference`, `local_shell_call`, other built-in calls, unknown types: 400 naming the type

Headers: none of a Responses client's headers mean anything to Anthropic; none are passed.

Answers: thinking → `reasoning` item (`encrypted_content` = the sealed signature; `redacted_thinking` → empty
summary, its data sealed with a `redacted.` mark so it returns as redacted thinking), text → `message` item with
`output_text`, `tool_use` → `function_call` (with `namespace` for a namespaced tool) or `custom_tool_call`, as
the request declared the called tool (`Target.tools`).
`max_tokens` → `status: incomplete, incomplete_details.reason: max_output_tokens`; `refusal` → incomplete,
`content_filter`. Usage: `input_tokens` = input + cache read + cache creation, `cached_tokens` = cache read;
`reasoning_tokens` is 0 (Anthropic does not count thinking apart). Streams: buffered tool calls are emitted
whole at their block's end (arguments as one delta); an Anthropic `error` event becomes the client's `error`
event followed by `response.failed`.
"""

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import anthropic_defaults, error_bodies, responses_tools, seal
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator, named_event, parsed

_CONSUMED = frozenset({"model", "stream", "stream_options", "prompt_cache_key", "prompt_cache_retention", "store",
                       "metadata", "client_metadata", "input", "instructions", "tools", "tool_choice",
                       "parallel_tool_calls", "max_output_tokens", "reasoning", "temperature", "top_p", "text",
                       "include", "user", "safety_identifier", "service_tier", "truncation", "background",
                       "max_tool_calls", "top_logprobs", "previous_response_id", "conversation", "prompt"})
_BUILTIN_TOOLS = ("web_search", "file_search", "code_interpreter", "computer", "local_shell", "image_generation",
                  "mcp", "shell", "apply_patch")
_CUSTOM_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"input": {"type": "string"}},
                                  "required": ["input"]}
_EPHEMERAL = {"type": "ephemeral"}
_TIERS = {"auto": "auto", "default": "standard_only"}
# A redacted thinking block's data is sealed with this mark so it comes back as redacted thinking.
_REDACTED = "redacted."


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _text_of(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or a list of parts.")
    texts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
            texts.append(part.get("text", ""))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise _bad(f"{where}: a {kind!r} part cannot be part of the system prompt on a Claude model.")
    return texts


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise _bad(f"{where}: input_image needs an image_url (file_id is not supported on a Claude model).")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media = header[5:].split(";", 1)[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or a list of parts.")
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "refusal"):
            text = part.get("refusal" if kind == "refusal" else "text")
            if text:  # Anthropic refuses empty text blocks
                blocks.append({"type": "text", "text": text})
        elif kind == "input_image":
            blocks.append(_image(part, f"{where}.content[{index}]"))
        else:
            raise _bad(f"{where}.content[{index}]: part type {kind!r} is not supported on a Claude model.")
    return blocks


def _arguments(text: Any, where: str) -> Any:
    if not isinstance(text, str):
        raise _bad(f"{where}.arguments must be a JSON string.")
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        raise _bad(f"{where}.arguments is not valid JSON.") from None
    if not isinstance(value, dict):
        raise _bad(f"{where}.arguments must be a JSON object.")
    return value


def _tool(tool: Any, where: str) -> dict[str, Any]:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind in ("function", "custom") and (not isinstance(tool.get("name"), str) or not tool["name"]):
        raise _bad(f"{where}.name must be a non-empty string.")
    if kind == "function":
        out: dict[str, Any] = {"name": tool["name"], "input_schema": tool.get("parameters") or {"type": "object"}}
        if tool.get("description"):
            out["description"] = tool["description"]
        return out
    if kind == "custom":
        description = tool.get("description") or ""
        if not isinstance(description, str):
            raise _bad(f"{where}.description must be a string.")
        fmt = tool.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar":
            description += (f"\n\nThe `input` string must follow this {fmt.get('syntax', '')} grammar:\n"
                            f"{fmt.get('definition', '')}")
        out = {"name": tool["name"], "input_schema": _CUSTOM_SCHEMA}
        if description:
            out["description"] = description
        return out
    if isinstance(kind, str) and kind.startswith(_BUILTIN_TOOLS):
        raise _bad(f"{where}: the built-in tool type {kind!r} cannot run on a Claude model.")
    raise _bad(f"{where}: tool type {kind!r} is not supported on a Claude model.")


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None or choice == "auto":
        out = {"type": "auto"} if parallel is False else None
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom") and choice.get("name"):
        out = {"type": "tool", "name": responses_tools.upstream_name(choice["name"], choice.get("namespace"))}
    else:
        raise _bad("tool_choice: only auto, required, none or a named function/custom tool work on a Claude model.")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


class _Messages:
    """Anthropic messages built item by item, same-role neighbours merged."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": list(blocks)})


def _tool_result(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    output = item.get("output")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": item.get("call_id")}
    if isinstance(output, str):
        result["content"] = output
    elif isinstance(output, list):
        result["content"] = _parts(output, where)
    else:
        raise _bad(f"{where}.output must be a string or a list of parts.")
    return result


def _convert_input(items: Any, platform: str, system: list[str], tools: list[dict[str, Any]]) -> _Messages:
    built = _Messages()
    if isinstance(items, str):
        built.add("user", [{"type": "text", "text": items}] if items else [])
        return built
    if not isinstance(items, list):
        raise _bad("input must be a string or a list of items.")
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object.")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.extend(_text_of(item.get("content"), where))
            elif role in ("user", "assistant"):
                built.add(role, _parts(item.get("content"), where))
            else:
                raise _bad(f"{where}.role {role!r} is not supported.")
        elif kind == "function_call":
            name = responses_tools.upstream_name(item.get("name"), item.get("namespace"))
            built.add("assistant", [{"type": "tool_use", "id": item.get("call_id"), "name": name,
                                     "input": _arguments(item.get("arguments"), where)}])
        elif kind == "custom_tool_call":
            name = responses_tools.upstream_name(item.get("name"), item.get("namespace"))
            built.add("assistant", [{"type": "tool_use", "id": item.get("call_id"), "name": name,
                                     "input": {"input": item.get("input", "")}}])
        elif kind in ("function_call_output", "custom_tool_call_output"):
            built.add("user", [_tool_result(item, where)])
        elif kind == "reasoning":
            token = item.get("encrypted_content")
            signature = seal.opened(token, platform) if isinstance(token, str) else None
            if signature is not None:
                summary = item.get("summary") or []
                if not isinstance(summary, list):
                    raise _bad(f"{where}.summary must be an array.")
                texts = [part.get("text", "") for part in summary if isinstance(part, dict)]
                if not all(isinstance(text, str) for text in texts):
                    raise _bad(f"{where}.summary: each part's text must be a string.")
                text = "\n\n".join(texts)
                block = ({"type": "redacted_thinking", "data": signature.removeprefix(_REDACTED)}
                         if signature.startswith(_REDACTED) else
                         {"type": "thinking", "thinking": text, "signature": signature})
                built.add("assistant", [block])
        elif kind == "additional_tools":
            tools.extend(_tool(tool, place)
                         for tool, place in responses_tools.flattened(item.get("tools") or [], f"{where}.tools"))
        else:
            raise _bad(f"{where}: input item type {kind!r} is not supported on a Claude model.")
    # An assistant turn left with only reasoning (its answer was not sent back) says nothing Claude accepts.
    built.messages = [message for message in built.messages if message["role"] == "user" or any(
        block["type"] not in ("thinking", "redacted_thinking") for block in message["content"])]
    merged = _Messages()
    for message in built.messages:
        merged.add(message["role"], message["content"])
    return merged


def _unsigned_tool_turn(messages: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn calls tools without starting with thinking: with thinking on, Anthropic
    refuses such a tool loop (its reasoning came from another platform and was dropped)."""
    for message in reversed(messages):
        if message["role"] == "assistant":
            blocks = message["content"]
            return any(block["type"] == "tool_use" for block in blocks) and blocks[0]["type"] not in (
                "thinking", "redacted_thinking")
    return False


class ResponsesToAnthropic(Translator):
    client = ClientFormat.RESPONSES
    upstream = ClientFormat.ANTHROPIC

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        for name in body:
            if name not in _CONSUMED:
                raise _bad(f"{name}: this field is not supported when a Claude model serves the Responses API.")
        for name in ("previous_response_id", "conversation", "prompt"):
            if body.get(name) is not None:
                raise _bad(f"{name}: the gateway keeps no stored conversations or prompts; send the whole input.")
        if body.get("background"):
            raise _bad("background: background responses are not supported on a Claude model.")
        if body.get("max_tool_calls") is not None:
            raise _bad("max_tool_calls is not supported on a Claude model.")
        if body.get("top_logprobs"):
            raise _bad("top_logprobs is not supported on a Claude model.")
        if body.get("truncation") not in (None, "disabled"):
            raise _bad("truncation: only 'disabled' is supported; the gateway does not drop context.")
        include = body.get("include") or []
        if not isinstance(include, list):
            raise _bad("include must be an array.")
        for value in include:
            if value != "reasoning.encrypted_content":
                raise _bad(f"include: {value!r} is not supported on a Claude model.")
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        output_format: dict[str, Any] | None = None
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            output_format = {"type": "json_schema", "schema": fmt["schema"]}
        elif isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            raise _bad(f"text.format: {fmt.get('type')!r} is not supported on a Claude model (use json_schema).")

        system: list[str] = []
        if isinstance(body.get("instructions"), str) and body["instructions"]:
            system.append(body["instructions"])
        tools = [_tool(tool, where) for tool, where in responses_tools.flattened(body.get("tools") or [], "tools")]
        built = _convert_input(body.get("input", []), target.platform, system, tools)

        out: dict[str, Any] = {"model": target.model}
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        if effort is not None and not isinstance(effort, str):
            raise _bad("reasoning.effort must be a string.")
        thinking = anthropic_defaults.thinking_for_effort(effort)
        if thinking is not None and _unsigned_tool_turn(built.messages):
            thinking = None
        out["max_tokens"] = anthropic_defaults.max_tokens_with(thinking, body.get("max_output_tokens"))
        if system:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": part} for part in system]
            blocks[-1]["cache_control"] = _EPHEMERAL
            out["system"] = blocks
        messages = built.messages
        if messages and messages[-1]["content"]:
            last = messages[-1]["content"]
            if last[-1].get("type") not in ("thinking", "redacted_thinking"):
                last[-1] = {**last[-1], "cache_control": _EPHEMERAL}
        out["messages"] = messages
        if tools:
            tools[-1] = {**tools[-1], "cache_control": _EPHEMERAL}
            out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
        if thinking is not None:
            out["thinking"] = thinking
        elif body.get("temperature") is not None:
            out["temperature"] = body["temperature"]
        elif body.get("top_p") is not None:
            out["top_p"] = body["top_p"]
        if output_format is not None:
            out["output_config"] = {"format": output_format}
        user = body.get("safety_identifier") or body.get("user")
        if isinstance(user, str) and user:
            out["metadata"] = {"user_id": user}
        tier = body.get("service_tier")
        if tier is not None:
            if not isinstance(tier, str) or tier not in _TIERS:
                raise _bad(f"service_tier: {tier!r} is not available on a Claude model (use auto or default).")
            out["service_tier"] = _TIERS[tier]
        out["stream"] = target.stream
        return Conversion(out, {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        for number, block in enumerate(body.get("content") or []):
            item = _item(block, target, f"{_suffix(body.get('id'))}_{number}")
            if item is not None:
                output.append(item)
        status, incomplete = _status(body.get("stop_reason"))
        return _response(_response_id(body.get("id")), int(time.time()), status, incomplete, output,
                         _usage(body.get("usage")), target.model)

    def answer_target(self, body: Mapping[str, Any], target: Target) -> Target:
        return dataclasses.replace(target, tools=responses_tools.client_tools(body))

    def stream(self, target: Target) -> StreamConverter:
        return _Stream(target)


def _suffix(anthropic_id: Any) -> str:
    text = anthropic_id if isinstance(anthropic_id, str) else "0"
    return text.removeprefix("msg_")


def _response_id(anthropic_id: Any) -> str:
    return f"resp_{_suffix(anthropic_id)}"


def _call(call_id: Any, name: str, arguments: str, target: Target, item_id: str, status: str) -> dict[str, Any]:
    """The client's item for a tool call, as the request declared the tool."""
    name, namespace, custom = responses_tools.answered(name, arguments, target.tools)
    return responses_tools.call_item(call_id, item_id, name, arguments, namespace, custom, status)


def _item(block: Mapping[str, Any], target: Target, suffix: str) -> dict[str, Any] | None:
    kind, platform = block.get("type"), target.platform
    if kind == "thinking":
        return {"id": f"rs_{suffix}", "type": "reasoning",
                "summary": [{"type": "summary_text", "text": block.get("thinking", "")}],
                "encrypted_content": seal.sealed(platform, block.get("signature", ""))}
    if kind == "redacted_thinking":
        return {"id": f"rs_{suffix}", "type": "reasoning", "summary": [],
                "encrypted_content": seal.sealed(platform, _REDACTED + block.get("data", ""))}
    if kind == "text":
        return {"id": f"msg_{suffix}", "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": block["text"]}]}
    if kind == "tool_use":
        payload: Any = block.get("input")
        arguments = orjson.dumps(payload if payload is not None else {}).decode()
        return _call(block.get("id"), str(block.get("name", "")), arguments, target, suffix, "completed")
    return None


def _status(stop_reason: Any) -> tuple[str, dict[str, str] | None]:
    if stop_reason == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop_reason == "refusal":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    cached = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + cached + _count(usage, "cache_creation_input_tokens")
    output = _count(usage, "output_tokens")
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + output}


def _response(response_id: str, created: int, status: str, incomplete: dict[str, str] | None,
              output: list[dict[str, Any]], usage: dict[str, Any] | None, model: str) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None, "incomplete_details": incomplete, "instructions": None,
            "max_output_tokens": None, "max_tool_calls": None, "model": model, "output": output,
            "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None}, "safety_identifier": None, "service_tier": "default",
            "store": False, "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
            "usage": usage, "user": None, "metadata": {}}


class _Stream(StreamConverter):
    """Anthropic events → Responses events; Anthropic opens one block at a time, so one item is open."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sequence = 0
        self.response_id = "resp_0"
        self.suffix = "0"
        self.created = int(time.time())
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] = {}
        self.stop_reason: Any = None
        self.block: dict[str, Any] | None = None
        self.text: list[str] = []
        self.signature = ""
        self.arguments: list[str] = []
        self.started = False
        self.ended = False

    def _event(self, name: str, payload: dict[str, Any]) -> SSEEvent:
        payload = {"type": name, **payload, "sequence_number": self.sequence}
        self.sequence += 1
        return named_event(name, payload)

    def _snapshot(self, status: str, incomplete: dict[str, str] | None = None,
                  usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return _response(self.response_id, self.created, status, incomplete, list(self.output), usage,
                         self.target.model)

    def _start(self, message: Mapping[str, Any]) -> list[SSEEvent]:
        self.started = True
        self.suffix = _suffix(message.get("id"))
        self.response_id = f"resp_{self.suffix}"
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.usage.update(usage)
        return [self._event("response.created", {"response": self._snapshot("in_progress")}),
                self._event("response.in_progress", {"response": self._snapshot("in_progress")})]

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self.ended:
            return []
        data = parsed(event)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.name
        if kind == "message_start":
            return [] if self.started else self._start(data.get("message") or {})
        events = [] if self.started else self._start({})
        if kind == "content_block_start":
            events += self._open(data.get("content_block") or {})
        elif kind == "content_block_delta":
            events += self._delta(data.get("delta") or {})
        elif kind == "content_block_stop":
            events += self._close()
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self.stop_reason = delta["stop_reason"]
            if isinstance(data.get("usage"), dict):
                self.usage.update({k: v for k, v in data["usage"].items() if v is not None})
        elif kind == "message_stop":
            events += self._end()
        elif kind == "error":
            events += self._fail(data.get("error") or {})
        return events

    def _index(self) -> int:
        return len(self.output)

    def _open(self, block: Mapping[str, Any]) -> list[SSEEvent]:
        kind = block.get("type")
        suffix = f"{self.suffix}_{self._index()}"
        self.text, self.arguments, self.signature = [], [], ""
        if kind == "thinking":
            self.block = {"id": f"rs_{suffix}", "type": "reasoning", "summary": []}
            return [self._event("response.output_item.added", {"item": dict(self.block),
                                                                "output_index": self._index()}),
                    self._event("response.reasoning_summary_part.added", {
                        "item_id": self.block["id"], "output_index": self._index(),
                        "part": {"type": "summary_text", "text": ""}, "summary_index": 0})]
        if kind == "redacted_thinking":
            self.block = {"id": f"rs_{suffix}", "type": "reasoning", "summary": [],
                          "encrypted_content": seal.sealed(self.target.platform, _REDACTED + block.get("data", ""))}
            return [self._event("response.output_item.added", {"item": {"id": self.block["id"], "type": "reasoning",
                                                                        "summary": []},
                                                               "output_index": self._index()})]
        if kind == "text":
            self.block = {"id": f"msg_{suffix}", "type": "message", "status": "in_progress", "content": [],
                          "role": "assistant"}
            self.text.append(block.get("text") or "")
            return [self._event("response.output_item.added", {"item": dict(self.block),
                                                                "output_index": self._index()}),
                    self._event("response.content_part.added", {
                        "content_index": 0, "item_id": self.block["id"], "output_index": self._index(),
                        "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})]
        if kind == "tool_use":
            self.block = {"id": suffix, "type": "tool_use", "call_id": block.get("id"), "name": block.get("name")}
            initial = block.get("input")
            if isinstance(initial, dict) and initial:
                self.arguments.append(orjson.dumps(initial).decode())
            return []
        self.block = None  # server tools and other blocks have no Responses item (their tools are refused)
        return []

    def _delta(self, delta: Mapping[str, Any]) -> list[SSEEvent]:
        block = self.block
        if block is None:
            return []
        kind = delta.get("type")
        if kind == "text_delta" and block["type"] == "message":
            self.text.append(delta.get("text", ""))
            return [self._event("response.output_text.delta", {
                "content_index": 0, "delta": delta.get("text", ""), "item_id": block["id"], "logprobs": [],
                "output_index": self._index()})]
        if kind == "thinking_delta" and block["type"] == "reasoning":
            self.text.append(delta.get("thinking", ""))
            return [self._event("response.reasoning_summary_text.delta", {
                "delta": delta.get("thinking", ""), "item_id": block["id"], "output_index": self._index(),
                "summary_index": 0})]
        if kind == "signature_delta":
            self.signature += delta.get("signature", "")
        elif kind == "input_json_delta":
            self.arguments.append(delta.get("partial_json", ""))
        return []

    def _close(self) -> list[SSEEvent]:
        block, self.block = self.block, None
        if block is None:
            return []
        index = self._index()
        text = "".join(self.text)
        events: list[SSEEvent] = []
        if block["type"] == "reasoning":
            if "encrypted_content" not in block:
                summary = {"type": "summary_text", "text": text}
                events += [self._event("response.reasoning_summary_text.done", {
                               "item_id": block["id"], "output_index": index, "summary_index": 0, "text": text}),
                           self._event("response.reasoning_summary_part.done", {
                               "item_id": block["id"], "output_index": index, "part": summary,
                               "summary_index": 0})]
                block["summary"] = [summary]
                block["encrypted_content"] = seal.sealed(self.target.platform, self.signature)
            item = block
        elif block["type"] == "message":
            part: dict[str, Any] = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
            events += [self._event("response.output_text.done", {
                           "content_index": 0, "item_id": block["id"], "logprobs": [], "output_index": index,
                           "text": text}),
                       self._event("response.content_part.done", {
                           "content_index": 0, "item_id": block["id"], "output_index": index, "part": part})]
            item = {**block, "status": "completed", "content": [part]}
        else:
            item, tool_events = self._tool(block, index)
            events += tool_events
        self.output.append(item)
        events.append(self._event("response.output_item.done", {"item": item, "output_index": index}))
        return events

    def _tool(self, block: Mapping[str, Any], index: int) -> tuple[dict[str, Any], list[SSEEvent]]:
        arguments = "".join(self.arguments) or "{}"
        done = _call(block["call_id"], block["name"], arguments, self.target, block["id"], "completed")
        item_id = done["id"]
        if done["type"] == "custom_tool_call":
            added = {**done, "status": "in_progress", "input": ""}
            return done, [
                self._event("response.output_item.added", {"item": added, "output_index": index}),
                self._event("response.custom_tool_call_input.delta", {
                    "delta": done["input"], "item_id": item_id, "output_index": index}),
                self._event("response.custom_tool_call_input.done", {
                    "input": done["input"], "item_id": item_id, "output_index": index})]
        added = {**done, "status": "in_progress", "arguments": ""}
        return done, [
            self._event("response.output_item.added", {"item": added, "output_index": index}),
            self._event("response.function_call_arguments.delta", {
                "delta": arguments, "item_id": item_id, "output_index": index}),
            self._event("response.function_call_arguments.done", {
                "arguments": arguments, "item_id": item_id, "output_index": index})]

    def _end(self) -> list[SSEEvent]:
        events = self._close() if self.block is not None else []
        self.ended = True
        status, incomplete = _status(self.stop_reason)
        name = "response.completed" if status == "completed" else "response.incomplete"
        response = self._snapshot(status, incomplete, _usage(self.usage))
        response["completed_at"] = int(time.time())
        return [*events, self._event(name, {"response": response})]

    def _fail(self, error: Mapping[str, Any]) -> list[SSEEvent]:
        self.ended = True
        message = error.get("message") if isinstance(error.get("message"), str) else "The upstream failed."
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        status = {"overloaded_error": 529, "rate_limit_error": 429, "invalid_request_error": 400,
                  "request_too_large": 413, "timeout_error": 504}.get(kind or "", 500)
        failure = error_bodies.as_error(status, orjson.dumps({"error": {"message": message, "type": kind}}))
        response = self._snapshot("failed")
        response["error"] = {"code": failure.openai_code or failure.openai_type, "message": failure.message}
        return [error_bodies.stream_error(status, str(message), kind, ClientFormat.RESPONSES),
                self._event("response.failed", {"response": response})]

    def finish(self) -> list[SSEEvent]:
        return [] if self.ended else self._end()


TRANSLATOR = ResponsesToAnthropic()
