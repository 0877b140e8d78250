"""OpenAI Chat Completions client (the openai SDK's `chat.completions`, most OpenAI-compatible tools) served by
a Claude platform (claude-console, claude-official, claude-ccr, bedrock).

Request fields (Chat Completions → Anthropic Messages):

- `model`: replaced by `target.model` (the platform maps it to the account's model)
- `messages`: see the message table below; neighbours of one role merge into one message (Anthropic needs the
  roles to alternate); empty text parts are left out (Anthropic refuses empty text blocks) and a message left
  with nothing is left out
- `max_completion_tokens`, `max_tokens`: `max_tokens` (the smaller when both are given; else
  `anthropic_defaults.DEFAULT_MAX_TOKENS`), raised above a thinking budget
- `reasoning_effort`: `thinking` via `anthropic_defaults.thinking_for_effort` (`none`/`minimal`: no thinking).
  Anthropic wants the turn that made a tool call to start with its signed thinking when thinking is on: when the
  last assistant turn has tool calls but no thinking this platform signed (see `thinking_blocks`), thinking is
  left off for that request rather than having it refused; so it is when `tool_choice` forces a tool call
  (Anthropic refuses thinking with a forced tool)
- `temperature`: 0–1 passed; above 1 is a 400 (Anthropic's range is 0–1; scaling it would change its meaning).
  With thinking on, `temperature` and `top_p` are consumed: Anthropic only accepts their defaults with thinking
- `top_p`: passed, but consumed when `temperature` is also set (current Claude models take one of the two)
- `stop` (string or list): `stop_sequences`
- `stream`: replaced by `target.stream`; `stream_options.include_usage`: the answer's stream ends with the usage
  chunk (`target.include_usage`); other `stream_options` consumed
- `tools` `function`: `{name, description, input_schema: parameters}` (no parameters: an empty object schema;
  `strict` consumed: Claude follows the schema); other tool types: 400 naming the type
- `tool_choice`: `auto`→auto, `none`→none, `required`→any, `{type: function, function: {name}}`→`{type: tool,
  name}`; `allowed_tools` 400; `required`/named without tools 400; `auto`/`none` without tools: nothing to send
- `parallel_tool_calls: false`: `tool_choice.disable_parallel_tool_use: true` (with tools; `true` is the default)
- `response_format` `text`: nothing to do; `json_object`: a system instruction asking for one JSON object and
  nothing else; `json_schema`: a system instruction carrying the schema (Anthropic's structured outputs are a
  beta not offered by every Claude platform, so the portable instruction is used; the answer is not enforced)
- `user`, `safety_identifier`: `metadata.user_id` (`user` first)
- `n`: 1 passed as nothing; above 1 400 (Anthropic makes one answer)
- `logprobs: true`, `top_logprobs`: 400 (Anthropic gives no log probabilities); `logprobs: false` consumed
- `logit_bias` (non-empty): 400 (OpenAI token ids mean nothing to Claude's tokenizer)
- `frequency_penalty`, `presence_penalty`: 0 consumed; any other value 400 (no Anthropic counterpart)
- `modalities`: `["text"]` consumed; with `audio` 400; `audio`: 400 (Claude answers in text only)
- `seed`: consumed: a best-effort determinism hint; Anthropic has none
- `store`, `metadata`: consumed: they ask OpenAI to keep the completion for its dashboard, which a Claude
  platform does not do (Anthropic's own metadata takes only a user id)
- `service_tier`: `auto`→`auto`, `default`→`standard_only`, `priority`→`auto` (Anthropic uses Priority Tier
  capacity under `auto` when the account has it); `flex`/`scale` 400
- `prediction`: consumed: predicted outputs only speed up OpenAI's answer, they do not change it
- `prompt_cache_key`, `prompt_cache_retention`: consumed: account stickiness is the gateway's job; no
  `cache_control` is added (the client cannot say where its stable prefix ends)
- `verbosity`: consumed: a length hint with no Anthropic parameter
- `functions`, `function_call` (deprecated): 400 asking for `tools` / `tool_choice`
- `web_search_options`: 400 (OpenAI's built-in search)
- vendor extensions: `top_k` → `top_k`
- anything else: 400 naming the field

Messages:

- `system` / `developer`: `system` text blocks, in order; one in the middle of the conversation joins the system
  prompt too (Anthropic has one system prompt, before the conversation)
- `user`: string → string; parts: `text`→text, `image_url` with a `data:` URL → base64 image (media type from the
  URL), http(s) URL → `{type: url}` image source (`detail` consumed), `file` with `file_data` (a PDF data URL) →
  base64 `document`; `file_id`, `input_audio`, other parts: 400 naming the part
- `assistant`: `content` (string, `text`/`refusal` parts) and `refusal` → text blocks; `tool_calls` → `tool_use`
  blocks (id kept, `arguments` parsed: not a JSON object → 400); `thinking_blocks` (this module's answers carry
  them) whose sealed signature opens for this platform → `thinking` blocks first, byte-exact; any other → dropped;
  `reasoning_content` alone (no signature) → dropped; `audio` → 400
- `tool`: a `tool_result` block (`tool_use_id` = `tool_call_id`, content the string or text parts); consecutive
  tool results and the user message after them share one `user` message
- `function` role: 400 (deprecated; use `tool`)
- `name` on any message: consumed: Anthropic has no participant names

Headers: only the client's `anthropic-*` headers (e.g. `anthropic-beta`) are passed; OpenAI's own headers mean
nothing to Anthropic.

Answers (Anthropic message → `chat.completion`): id `chatcmpl-<message id without msg_>`; text blocks joined into
`content`; `tool_use` → `tool_calls` (arguments as a JSON string); `thinking` → `reasoning_content` (joined text,
as several gateways do) and `thinking_blocks` (each with its signature sealed for the platform, so it can come
back); `redacted_thinking` → a `thinking_blocks` entry with sealed `data`; other block types (server tools) are
not part of a chat answer and are left out. `stop_reason`: end_turn/stop_sequence/pause_turn→stop,
max_tokens/model_context_window_exceeded→length, tool_use→tool_calls, refusal→content_filter. Usage:
prompt_tokens = input + cache read + cache creation, `prompt_tokens_details.cached_tokens` = cache read,
completion_tokens = output (Anthropic does not count reasoning tokens apart: `reasoning_tokens` is not given).

Streams: `message_start` → the first chunk (`role: assistant`); text deltas → `content`; thinking deltas →
`reasoning_content`; a `tool_use` block → a `tool_calls` delta with index/id/name and empty arguments, its
`input_json_delta` pieces → argument fragments; signature deltas are not sent (chat chunks have no place for
them); `message_delta` → remembered; `message_stop` → the `finish_reason` chunk, the usage chunk (empty choices)
when the client asked `include_usage`, then `[DONE]`. An Anthropic `error` event → OpenAI's stream error.
"""

import time
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import anthropic_defaults, error_bodies, seal
from switchboard_edge.translate.base import (
    OPENAI_DONE,
    Conversion,
    StreamConverter,
    Target,
    Translator,
    data_event,
    parsed,
)

# Fields that are accepted and need nothing on Anthropic (documented above).
_CONSUMED = frozenset({"seed", "store", "metadata", "prediction", "prompt_cache_key", "prompt_cache_retention",
                       "verbosity", "stream", "stream_options", "model", "messages"})
_HANDLED = frozenset({"max_tokens", "max_completion_tokens", "reasoning_effort", "temperature", "top_p", "stop",
                      "tools", "tool_choice", "parallel_tool_calls", "response_format", "user",
                      "safety_identifier", "n", "logprobs", "top_logprobs", "logit_bias", "frequency_penalty",
                      "presence_penalty", "modalities", "audio", "service_tier", "functions", "function_call",
                      "web_search_options", "top_k"})
_SERVICE_TIERS = {"auto": "auto", "default": "standard_only", "priority": "auto"}
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                 "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
# Anthropic error types (in-stream `error` events) → the HTTP status they stand for.
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                 "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                 "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
_JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no code fences."
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _text_of(content: Any, where: str) -> list[str]:
    """The texts of a system/developer/tool message's content (string or text parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _refuse(f"'{where}.content' must be a string or an array of text parts.")
    texts = []
    for number, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise _refuse(f"'{where}.content[{number}]' must be a text part here.")
        texts.append(part["text"])
    return texts


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    head, comma, data = url.partition(",")
    if not comma or not head.endswith(";base64"):
        raise _refuse(f"'{where}' must be a base64 data URL (data:<media type>;base64,<data>) or an http(s) URL.")
    return head[5:-7], data


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _refuse(f"'{where}.image_url.url' must be a string.")
    if url.startswith("data:"):
        media, data = _data_url(url, f"{where}.image_url.url")
        if media not in _IMAGE_TYPES:
            raise _refuse(f"'{where}.image_url': image type '{media}' is not supported by Claude "
                          "(image/jpeg, image/png, image/gif, image/webp).")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _refuse(f"'{where}.image_url.url' must be a data URL or an http(s) URL.")


def _file(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    file = part.get("file")
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str):
        raise _refuse(f"'{where}.file': only inline 'file_data' (a PDF data URL) can be sent to Claude; "
                      "'file_id' refers to OpenAI's file storage.")
    media, payload = _data_url(data, f"{where}.file.file_data")
    if media != "application/pdf":
        raise _refuse(f"'{where}.file': file type '{media}' is not supported by Claude (application/pdf).")
    return {"type": "document", "source": {"type": "base64", "media_type": media, "data": payload}}


def _user_content(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _refuse(f"'{where}.content' must be a string or an array of content parts.")
    blocks = []
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, at))
        elif kind == "file":
            blocks.append(_file(part, at))
        elif kind == "input_audio":
            raise _refuse(f"'{at}': audio input is not supported by Claude.")
        else:
            raise _refuse(f"'{at}': content part type {kind!r} is not supported by Claude.")
    return blocks


def _thinking_blocks(value: Any, platform: str) -> list[dict[str, Any]]:
    """This platform's own signed thinking, restored byte-exact; anything else left out."""
    if not isinstance(value, list):
        return []
    blocks = []
    for block in value:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and isinstance(block.get("signature"), str):
            token = seal.opened(block["signature"], platform)
            if token is not None:
                blocks.append({"type": "thinking", "thinking": block.get("thinking") or "", "signature": token})
        elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            token = seal.opened(block["data"], platform)
            if token is not None:
                blocks.append({"type": "redacted_thinking", "data": token})
    return blocks


def _assistant_content(message: Mapping[str, Any], where: str, platform: str) -> list[dict[str, Any]]:
    if message.get("audio") is not None:
        raise _refuse(f"'{where}.audio': audio answers cannot be sent to Claude.")
    blocks = _thinking_blocks(message.get("thinking_blocks"), platform)
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for number, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            field = "text" if kind == "text" else "refusal" if kind == "refusal" else None
            if field is None or not isinstance(part.get(field), str):
                raise _refuse(f"'{where}.content[{number}]': assistant content parts must be text or refusal.")
            if part[field]:
                blocks.append({"type": "text", "text": part[field]})
    elif content is not None:
        raise _refuse(f"'{where}.content' must be a string or an array of content parts.")
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise _refuse(f"'{where}.tool_calls' must be an array.")
    for number, call in enumerate(calls or ()):
        at = f"{where}.tool_calls[{number}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise _refuse(f"'{at}' must be a function call with an id.")
        if call.get("type", "function") != "function":
            raise _refuse(f"'{at}.type' {call.get('type')!r} is not supported by Claude.")
        arguments = function.get("arguments") or "{}"
        try:
            arguments_value = orjson.loads(arguments) if isinstance(arguments, str) else None
        except orjson.JSONDecodeError:
            arguments_value = None
        if not isinstance(arguments_value, dict):
            raise _refuse(f"'{at}.function.arguments' must be a JSON object in a string.")
        blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"),
                       "input": arguments_value})
    return blocks


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise _refuse(f"'{where}.tool_call_id' is required.")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    else:
        texts = [text for text in _text_of(content, where) if text]
        result["content"] = [{"type": "text", "text": text} for text in texts]
    return result


def _conversation(messages: Any, platform: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, Anthropic messages with alternating roles)."""
    if not isinstance(messages, list) or not messages:
        raise _refuse("'messages' must be a non-empty array.")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict):
            raise _refuse(f"'{where}' must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(text for text in _text_of(message.get("content"), where) if text)
            continue
        if role == "user":
            anthropic_role, blocks = "user", _user_content(message.get("content"), where)
        elif role == "assistant":
            anthropic_role, blocks = "assistant", _assistant_content(message, where, platform)
        elif role == "tool":
            anthropic_role, blocks = "user", [_tool_result(message, where)]
        elif role == "function":
            raise _refuse(f"'{where}.role': the 'function' role is deprecated; send tool results as 'tool'.")
        else:
            raise _refuse(f"'{where}.role' {role!r} is not a chat role.")
        if not blocks:
            continue
        if out and out[-1]["role"] == anthropic_role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": anthropic_role, "content": blocks})
    if not out:
        raise _refuse("'messages': no user or assistant message has any content.")
    for message in out:  # a lone text block reads best as the plain string
        content = message["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            message["content"] = content[0]["text"]
    return system, out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _refuse("'tools' must be an array.")
    out = []
    for number, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        function = tool.get("function") if isinstance(tool, dict) else None
        if kind != "function" or not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _refuse(f"'tools[{number}]': only function tools can be sent to Claude (got {kind!r}).")
        converted: dict[str, Any] = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            converted["description"] = function["description"]
        parameters = function.get("parameters")
        converted["input_schema"] = parameters if isinstance(parameters, dict) else {"type": "object",
                                                                                    "properties": {}}
        out.append(converted)
    return out


def _tool_choice(choice: Any, parallel: Any, has_tools: bool) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        converted: dict[str, Any] = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"} if has_tools else None
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise _refuse("'tool_choice.function.name' is required.")
        converted = {"type": "tool", "name": name}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        raise _refuse("'tool_choice' of type 'allowed_tools' is not supported by Claude.")
    else:
        raise _refuse(f"'tool_choice' {choice!r} is not a valid tool choice.")
    if not has_tools:
        if converted["type"] != "auto":
            raise _refuse("'tool_choice' asks for a tool call but no 'tools' are given.")
        return None
    if parallel is False:
        converted["disable_parallel_tool_use"] = True
    return converted if (choice is not None or parallel is False) else None


def _format_instruction(response_format: Any) -> str | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return _JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise _refuse("'response_format.json_schema.schema' must be an object.")
        return ("Respond with a single valid JSON value and nothing else (no prose, no code fences) that "
                "conforms to this JSON Schema:\n" + orjson.dumps(schema).decode())
    raise _refuse(f"'response_format' type {kind!r} is not supported.")


def _limit(body: Mapping[str, Any]) -> int | None:
    limits = [body[name] for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
    for value in limits:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _refuse("'max_completion_tokens' / 'max_tokens' must be a positive integer.")
    return min(limits) if limits else None


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise _refuse("'n': Claude makes one answer per request; send n = 1 or leave it out.")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise _refuse("'logprobs' / 'top_logprobs': log probabilities are not available from Claude.")
    if body.get("logit_bias"):
        raise _refuse("'logit_bias' is not supported by Claude (OpenAI token ids do not apply).")
    for name in ("frequency_penalty", "presence_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise _refuse(f"'{name}' is not supported by Claude (send 0 or leave it out).")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise _refuse("'modalities': Claude answers in text only.")
    if body.get("audio") is not None:
        raise _refuse("'audio': Claude answers in text only.")
    if body.get("functions") is not None or body.get("function_call") is not None:
        raise _refuse("'functions' / 'function_call' are deprecated; send 'tools' and 'tool_choice'.")
    if body.get("web_search_options") is not None:
        raise _refuse("'web_search_options': OpenAI's built-in web search is not available on Claude.")


def _last_turn_has_unsigned_calls(messages: list[dict[str, Any]]) -> bool:
    for message in reversed(messages):
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if isinstance(content, str):
            return False
        has_calls = any(block["type"] == "tool_use" for block in content)
        return has_calls and content[0]["type"] not in ("thinking", "redacted_thinking")
    return False


def _forces_tool(body: Mapping[str, Any]) -> bool:
    choice = body.get("tool_choice")
    return bool(body.get("tools")) and (choice == "required" or isinstance(choice, dict))


class OpenAIToAnthropic(Translator):
    client = ClientFormat.OPENAI
    upstream = ClientFormat.ANTHROPIC

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        for name in body:
            if name not in _HANDLED and name not in _CONSUMED:
                raise _refuse(f"'{name}' is not supported when this model is served by Claude.")
        _refuse_unsupported(body)
        system, messages = _conversation(body.get("messages"), target.platform)
        out: dict[str, Any] = {"model": target.model}
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in ("none", "minimal", *anthropic_defaults.THINKING_BUDGETS):
            raise _refuse(f"'reasoning_effort' {effort!r} is not a known effort (none, minimal, low, medium, high, "
                          "xhigh).")
        thinking = anthropic_defaults.thinking_for_effort(effort)
        if thinking is not None and (_last_turn_has_unsigned_calls(messages) or _forces_tool(body)):
            thinking = None
        out["max_tokens"] = anthropic_defaults.max_tokens_with(thinking, _limit(body))
        instruction = _format_instruction(body.get("response_format"))
        if instruction is not None:
            system.append(instruction)
        if system:
            out["system"] = [{"type": "text", "text": text} for text in system]
        out["messages"] = messages
        if thinking is not None:
            out["thinking"] = thinking
        temperature, top_p = body.get("temperature"), body.get("top_p")
        if temperature is not None:
            if not isinstance(temperature, int | float) or isinstance(temperature, bool) or not 0 <= temperature:
                raise _refuse("'temperature' must be a number from 0 to 1.")
            if temperature > 1:
                raise _refuse("'temperature' above 1 is not supported by Claude (its range is 0 to 1).")
        if thinking is None:
            if temperature is not None:
                out["temperature"] = temperature
            elif top_p is not None:
                out["top_p"] = top_p
            if body.get("top_k") is not None:
                out["top_k"] = body["top_k"]
        stop = body.get("stop")
        if isinstance(stop, str):
            out["stop_sequences"] = [stop]
        elif isinstance(stop, list) and stop:
            out["stop_sequences"] = stop
        elif stop is not None and stop != []:
            raise _refuse("'stop' must be a string or an array of strings.")
        tools = body.get("tools")
        if tools is not None:
            converted_tools = _tools(tools)
            if converted_tools:
                out["tools"] = converted_tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), "tools" in out)
        if choice is not None:
            out["tool_choice"] = choice
        user = body.get("user") or body.get("safety_identifier")
        if isinstance(user, str) and user:
            out["metadata"] = {"user_id": user}
        tier = body.get("service_tier")
        if tier is not None:
            if not isinstance(tier, str) or tier not in _SERVICE_TIERS:
                raise _refuse(f"'service_tier' {tier!r} is not available on Claude (auto, default, priority).")
            out["service_tier"] = _SERVICE_TIERS[tier]
        out["stream"] = target.stream
        passed = {name: value for name, value in headers.items() if name.lower().startswith("anthropic-")}
        return Conversion(out, passed)

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        texts: list[str] = []
        reasoning: list[str] = []
        thinking_blocks: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in body.get("content") or ():
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                calls.append({"id": block.get("id"), "type": "function",
                              "function": {"name": block.get("name"),
                                           "arguments": orjson.dumps(block.get("input") or {}).decode()}})
            elif kind == "thinking":
                reasoning.append(block.get("thinking", ""))
                signature = block.get("signature")
                thinking_blocks.append({"type": "thinking", "thinking": block.get("thinking", ""),
                                        "signature": seal.sealed(target.platform, signature)
                                        if isinstance(signature, str) and signature else ""})
            elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
                thinking_blocks.append({"type": "redacted_thinking",
                                        "data": seal.sealed(target.platform, block["data"])})
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None,
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        if thinking_blocks:
            message["thinking_blocks"] = thinking_blocks
        return {
            "id": _completion_id(body.get("id")),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": target.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _STOP_REASONS.get(body.get("stop_reason") or "end_turn", "stop")}],
            "usage": _usage(body.get("usage")),
        }

    def stream(self, target: Target) -> StreamConverter:
        return AnthropicToChatStream(target, include_usage=target.include_usage)


def _completion_id(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id.removeprefix("msg_")
    return "chatcmpl-" + orjson.dumps(time.time_ns()).decode()


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    cached = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + cached + _count(usage, "cache_creation_input_tokens")
    completion = _count(usage, "output_tokens")
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


class AnthropicToChatStream(StreamConverter):
    """Anthropic Messages events → `chat.completion.chunk`s, then `[DONE]`."""

    def __init__(self, target: Target, include_usage: bool) -> None:
        self._target = target
        self._include_usage = include_usage
        self._id = _completion_id(None)
        self._created = int(time.time())
        self._started = False
        self._done = False
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        # Anthropic block index → the tool call's index among the answer's calls.
        self._calls: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> SSEEvent:
        return data_event({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                           "model": self._target.model,
                           "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                        "finish_reason": finish_reason}]})

    def _start(self, message: Any) -> list[SSEEvent]:
        if self._started:
            return []
        self._started = True
        if isinstance(message, dict):
            self._id = _completion_id(message.get("id"))
            if isinstance(message.get("usage"), dict):
                self._usage.update(message["usage"])
        return [self._chunk({"role": "assistant", "content": ""})]

    def _end(self) -> list[SSEEvent]:
        if self._done:
            return []
        out = self._start(None)
        self._done = True
        finish = _STOP_REASONS.get(self._stop_reason or "end_turn", "stop")
        out.append(self._chunk({}, finish))
        if self._include_usage:
            out.append(data_event({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                                   "model": self._target.model, "choices": [], "usage": _usage(self._usage)}))
        out.append(OPENAI_DONE)
        return out

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._done:
            return []
        data = parsed(event)
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.name
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return []
            out = self._start(None)
            delta_type = delta.get("type")
            if delta_type == "text_delta" and delta.get("text"):
                out.append(self._chunk({"content": delta["text"]}))
            elif delta_type == "input_json_delta" and delta.get("partial_json"):
                call = self._calls.get(data.get("index", -1))
                if call is not None:
                    out.append(self._chunk({"tool_calls": [{"index": call,
                                                            "function": {"arguments": delta["partial_json"]}}]}))
            elif delta_type == "thinking_delta" and delta.get("thinking"):
                out.append(self._chunk({"reasoning_content": delta["thinking"]}))
            return out
        if kind == "message_start":
            return self._start(data.get("message"))
        if kind == "content_block_start":
            block = data.get("content_block")
            out = self._start(None)
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call = len(self._calls)
                self._calls[data.get("index", -1)] = call
                out.append(self._chunk({"tool_calls": [{"index": call, "id": block.get("id"), "type": "function",
                                                        "function": {"name": block.get("name"),
                                                                     "arguments": ""}}]}))
            return out
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            if isinstance(data.get("usage"), dict):
                self._usage.update({name: value for name, value in data["usage"].items() if value is not None})
            return []
        if kind == "message_stop":
            return self._end()
        if kind == "error":
            self._done = True
            error: Any = data.get("error")
            error = error if isinstance(error, dict) else {}
            error_type = error.get("type")
            error_type = error_type if isinstance(error_type, str) else "api_error"
            message = error.get("message")
            message = message if isinstance(message, str) else "The upstream API failed."
            return [error_bodies.stream_error(_ERROR_STATUS.get(error_type, 500), message, error_type,
                                              ClientFormat.OPENAI)]
        return []  # ping, content_block_stop, unknown events

    def finish(self) -> list[SSEEvent]:
        return self._end()


TRANSLATOR = OpenAIToAnthropic()
