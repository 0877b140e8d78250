"""OpenAI chat completions client served by OpenAI's Responses API (openai-responses: a Responses-only model such
as a `*-codex` one, or the ChatGPT sign-in Codex backend, whose own rules the platform applies: `store: false`,
`instructions`, always streamed and collected for a whole answer; see `upstream/codex_backend.py`).

Request fields (Chat Completions → Responses); `null` counts as absent everywhere:

- `model`: replaced by `target.model` (the platform maps it to the account's model)
- `messages`: the leading `system`/`developer` messages → `instructions` (their texts joined by a blank line); the
  rest → `input` items, see below
- `tools` `function`: flat `{type: function, name, description, parameters, strict}` (schemas by reference);
  `strict` is always sent, `false` when not given (Responses would otherwise default it to true)
- `tools` `custom`: `{type: custom, name, description, format}` (a `grammar` format flattened to `{type: grammar,
  syntax, definition}`)
- `tool_choice`: `auto`/`none`/`required` as is; `{type: function, function: {name}}` → `{type: function, name}`;
  `{type: custom, custom: {name}}` → `{type: custom, name}`; `{type: allowed_tools, allowed_tools: {mode, tools}}`
  → `{type: allowed_tools, mode, tools}` (flat tool names)
- `parallel_tool_calls`, `temperature`, `top_p`, `frequency_penalty`, `presence_penalty`, `metadata`, `user`,
  `safety_identifier`, `prompt_cache_key`, `prompt_cache_retention`, `service_tier`: same names
- `store`: same name, and `false` when not given (chat completions stores nothing by default, Responses does)
- `max_completion_tokens`, `max_tokens`: `max_output_tokens` (the smaller when both); below 16 (the Responses
  minimum): 400
- `reasoning_effort`: `reasoning.effort`
- `response_format` `text`: nothing to do; `json_object`: `text.format: {type: json_object}`; `json_schema`:
  `text.format: {type: json_schema, name, schema, description, strict}`
- `verbosity`: `text.verbosity`
- `stream`: replaced by `target.stream`
- `stream_options.include_usage`: the stream ends with the usage chunk (empty `choices`) when the client asked
  (`target.include_usage`); other `stream_options` consumed
- `n`: 1 consumed; more: 400 (Responses makes one answer)
- `stop`: 400 (Responses has no stop sequences); an empty list consumed
- `logprobs: true`: `include: ["message.output_text.logprobs"]`, with `top_logprobs` as is; the answer's token
  logprobs (same entry shape in both APIs) come back as `choices[0].logprobs.content`, in streams per chunk;
  `top_logprobs` without `logprobs: true`: 400 (as chat completions itself says)
- `seed`: 400 (Responses takes no seed)
- `logit_bias` (non-empty), `prediction`, `audio`, `modalities` other than `["text"]`, `web_search_options`,
  `functions`/`function_call` (the deprecated function calling: use `tools`): 400 naming the field
- anything else: 400 naming the field

Messages:

- `system`/`developer` after the first other message: an input `message` of that role with `input_text` parts
- `user`: input `message`: string → one `input_text`; parts `text` → `input_text`, `image_url` → `input_image`
  (`image_url` = the url, `detail` kept, else `auto`), `file` with `file_data` → `input_file` (`file_data`,
  `filename`), with `file_id` → 400 (files live on one account), `input_audio` → 400
- `assistant`: `content` (string or `text` parts) → a `message` with one `output_text` (annotations `[]`),
  `refusal` → a `refusal` part; `tool_calls` → `function_call` items (`call_id` = the call's id) after it, `custom`
  calls → `custom_tool_call` items; `audio`, `function_call` → 400
- `tool`: `function_call_output` (`call_id` = `tool_call_id`; string content as is, text parts as `input_text`)
- `function`: 400 (deprecated; use `tool`)
- `name` on a message: consumed (Responses messages carry no participant names)

Reasoning signatures: none cross this pair. The chat client cannot carry reasoning back, so no encrypted reasoning
is asked for; the answer's reasoning items are dropped (their tokens stay in `completion_tokens_details`).

Headers: `user-agent` and `x-stainless-*` pass; `openai-beta` (chat betas) and the rest are consumed.

Answers: a `response` → `chat.completion` (`chatcmpl-` + the response id, `created` = `created_at`): the `output_text`
parts of `message` items joined → `content` (two message items, e.g. commentary then final answer, apart by a blank
line, in streams too) (`url_citation` annotations → chat's nested form), `refusal` parts →
`refusal`; `function_call` items → `tool_calls` (`id` = `call_id`), `custom_tool_call` → `{type: custom, custom:
{name, input}}`; `reasoning` items dropped; other items (built-in tool calls, never asked for) ignored.
`finish_reason`: `tool_calls` when the answer calls tools, `length` for `incomplete` by `max_output_tokens`,
`content_filter` for `incomplete` by `content_filter`, else `stop`. Usage: `prompt_tokens` = `input_tokens`,
`cached_tokens` kept, `completion_tokens` = `output_tokens`, `reasoning_tokens` kept.

Streams: `response.created` → the first chunk (`role: assistant`, `content: ""`); `output_text.delta` → `content`
deltas; `refusal.delta` → `refusal` deltas; a `function_call` item added → a tool call delta (`index` in call order,
`id`, `type`, `name`, `arguments: ""`), `function_call_arguments.delta` → argument deltas (whatever of the final
arguments was not streamed is sent at the item's end); `custom_tool_call` the same with `custom: {name, input}`;
`response.completed`/`incomplete` → the finish chunk, the usage chunk (when asked), `[DONE]`. `response.failed` and
`error` → OpenAI's stream error event (and nothing after it). Reasoning summary events are dropped.
"""

import time
from collections.abc import Mapping
from typing import Any

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import error_bodies
from switchboard_edge.translate.base import (
    OPENAI_DONE,
    Conversion,
    StreamConverter,
    Target,
    Translator,
    data_event,
    parsed,
)

_PASSED_HEADERS = frozenset({"user-agent"})
_PASSED_PREFIXES = ("x-stainless-",)
_SAME_NAME = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "parallel_tool_calls", "metadata",
              "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier")
_HANDLED = frozenset({"model", "messages", "tools", "tool_choice", "store", "max_completion_tokens", "max_tokens",
                      "reasoning_effort", "response_format", "verbosity", "stream", "stream_options", "n", "stop",
                      "logprobs", "top_logprobs", "seed", "logit_bias", "prediction", "audio", "modalities",
                      "web_search_options", "functions", "function_call"})
# The Responses API's smallest `max_output_tokens`.
_MIN_OUTPUT = 16
_REFUSED = {
    "seed": "seed is not supported by this model: the Responses API takes no seed.",
    "prediction": "prediction (predicted outputs) is not supported by this model's Responses API.",
    "audio": "audio output is not supported by this model's Responses API.",
    "web_search_options": "web_search_options is not supported here: web search is not translated to this model's "
                          "Responses API.",
    "functions": "functions (deprecated function calling) is not supported here; use tools.",
    "function_call": "function_call (deprecated function calling) is not supported here; use tool_choice.",
}


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value else default


def _suffix(value: Any, prefix: str) -> str:
    text = value if isinstance(value, str) and value else f"{time.time_ns():x}"
    return text[len(prefix):] if text.startswith(prefix) else text


# ---------------------------------------------------------------------------------------------------------------
# Request


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise _bad("tools: every tool must be an object.")
    kind = tool.get("type")
    if kind == "function":
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad("tools: a function tool needs function.name.")
        out: dict[str, Any] = {"type": "function", "name": function["name"]}
        for field in ("description", "parameters"):
            if function.get(field) is not None:
                out[field] = function[field]
        out["strict"] = function.get("strict") is True
        return out
    if kind == "custom":
        custom = tool.get("custom")
        if not isinstance(custom, dict) or not isinstance(custom.get("name"), str):
            raise _bad("tools: a custom tool needs custom.name.")
        out = {"type": "custom", "name": custom["name"]}
        if custom.get("description") is not None:
            out["description"] = custom["description"]
        form = custom.get("format")
        if isinstance(form, dict) and form.get("type") == "grammar":
            grammar = _dict(form.get("grammar"))
            out["format"] = {"type": "grammar", "syntax": grammar.get("syntax", "lark"),
                             "definition": grammar.get("definition", "")}
        elif isinstance(form, dict):
            out["format"] = form
        return out
    raise _bad(f"tools: the tool type '{kind}' is not supported by this model's Responses API here.")


def _named(choice: Mapping[str, Any], kind: str) -> str:
    name = _dict(choice.get(kind)).get("name")
    if not isinstance(name, str):
        raise _bad(f"tool_choice: a {kind} choice needs {kind}.name.")
    return name


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and kind in ("function", "custom"):
        return {"type": kind, "name": _named(choice, kind)}
    if isinstance(choice, dict) and kind == "allowed_tools":
        allowed = _dict(choice.get("allowed_tools"))
        tools = []
        for tool in allowed.get("tools") or ():
            tool_kind = tool.get("type") if isinstance(tool, dict) else None
            if tool_kind not in ("function", "custom"):
                raise _bad("tool_choice: allowed_tools may only name function and custom tools.")
            tools.append({"type": tool_kind, "name": _named(tool, tool_kind)})
        return {"type": "allowed_tools", "mode": allowed.get("mode", "auto"), "tools": tools}
    raise _bad("tool_choice must be auto, none, required, a named function/custom tool or allowed_tools.")


def _response_format(value: Any, text: dict[str, Any]) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        text["format"] = {"type": "json_object"}
    elif kind == "json_schema" and isinstance(value, dict):
        schema = _dict(value.get("json_schema"))
        form: dict[str, Any] = {"type": "json_schema", "name": schema.get("name", "response"),
                                "schema": schema.get("schema")}
        for extra in ("description", "strict"):
            if schema.get(extra) is not None:
                form[extra] = schema[extra]
        text["format"] = form
    else:
        raise _bad(f"response_format: the type '{kind}' is not supported by this model's Responses API.")


def _texts(content: Any, where: str, part_type: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": part_type, "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            raise _bad(f"{where}: the content part type '{kind}' is not allowed in this message.")
        if not isinstance(part.get("text", ""), str):
            raise _bad(f"{where}: a text part's text must be a string.")
        parts.append({"type": part_type, "text": part.get("text", "")})
    return parts


def _user(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise _bad(f"{where}: image_url needs a url.")
            detail = image.get("detail") if isinstance(image, dict) else None
            parts.append({"type": "input_image", "image_url": url, "detail": detail or "auto"})
        elif kind == "file":
            file = _dict(part.get("file"))
            if not isinstance(file.get("file_data"), str):
                raise _bad(f"{where}: file parts need file_data here (a file_id refers to a file this gateway "
                           "cannot fetch for the serving account).")
            item: dict[str, Any] = {"type": "input_file", "file_data": file["file_data"]}
            if isinstance(file.get("filename"), str):
                item["filename"] = file["filename"]
            parts.append(item)
        else:
            raise _bad(f"{where}: the content part type '{kind}' is not supported by this model's Responses API.")
    return parts


def _assistant(message: Mapping[str, Any], where: str, items: list[dict[str, Any]]) -> None:
    for field in ("audio", "function_call"):
        if message.get(field) is not None:
            raise _bad(f"{where}.{field} is not supported by this model's Responses API.")
    content: list[dict[str, Any]] = []
    raw = message.get("content")
    if isinstance(raw, str):
        if raw:
            content.append({"type": "output_text", "text": raw, "annotations": []})
    elif isinstance(raw, list):
        for part in raw:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                content.append({"type": "output_text", "text": part.get("text", ""), "annotations": []})
            elif kind == "refusal":
                content.append({"type": "refusal", "refusal": part.get("refusal", "")})
            else:
                raise _bad(f"{where}: the assistant content part type '{kind}' is not supported.")
    elif raw is not None:
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append({"type": "refusal", "refusal": message["refusal"]})
    if content:
        items.append({"type": "message", "role": "assistant", "content": content})
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            raise _bad(f"{where}.tool_calls: every call must be an object.")
        if call.get("type") == "custom":
            custom = _dict(call.get("custom"))
            items.append({"type": "custom_tool_call", "call_id": call.get("id"), "name": custom.get("name"),
                          "input": custom.get("input", "")})
        else:
            function = _dict(call.get("function"))
            items.append({"type": "function_call", "call_id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments", "")})


def _tool_output(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise _bad(f"{where}.tool_call_id must be a string.")
    content = message.get("content")
    output: Any = content if isinstance(content, str) else _texts(content, where, "input_text")
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _messages(messages: Any, out: dict[str, Any]) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty array.")
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _bad(f"{where} must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            if not items:
                instructions.append("".join(part["text"] for part in _texts(message.get("content"), where, "t")))
            else:
                items.append({"type": "message", "role": role,
                              "content": _texts(message.get("content"), where, "input_text")})
        elif role == "user":
            items.append({"type": "message", "role": "user", "content": _user(message.get("content"), where)})
        elif role == "assistant":
            _assistant(message, where, items)
        elif role == "tool":
            items.append(_tool_output(message, where))
        elif role == "function":
            raise _bad(f"{where}: the function role (deprecated) is not supported here; use tool messages.")
        else:
            raise _bad(f"{where}.role '{role}' is not supported.")
    if instructions:
        out["instructions"] = "\n\n".join(instructions)
    out["input"] = items


def convert_request(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    out: dict[str, Any] = {"model": target.model}
    for field, value in body.items():
        if value is None:
            continue
        if field in _SAME_NAME:
            out[field] = value
        elif field in _REFUSED:
            raise _bad(_REFUSED[field])
        elif field not in _HANDLED:
            raise _bad(f"{field} is not supported by this model's Responses API.")
    _messages(body.get("messages"), out)
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise _bad("tools must be an array.")
        if body["tools"]:
            out["tools"] = [_tool(tool) for tool in body["tools"]]
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    out["store"] = body.get("store") is True
    limits = [body[name] for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
    if limits:
        if not all(isinstance(limit, int) and not isinstance(limit, bool) for limit in limits):
            raise _bad("max_tokens and max_completion_tokens must be integers.")
        if min(limits) < _MIN_OUTPUT:
            raise _bad(f"max_tokens/max_completion_tokens below {_MIN_OUTPUT} is not supported by this model: the "
                       f"Responses API's smallest max_output_tokens is {_MIN_OUTPUT}.")
        out["max_output_tokens"] = min(limits)
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    text: dict[str, Any] = {}
    if body.get("response_format") is not None:
        _response_format(body["response_format"], text)
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("n") not in (None, 1):
        raise _bad("n greater than 1 is not supported by this model: the Responses API makes one answer per request.")
    if body.get("stop") not in (None, []):
        raise _bad("stop is not supported by this model: the Responses API has no stop sequences.")
    if body.get("logprobs") is True:
        out["include"] = ["message.output_text.logprobs"]
        if body.get("top_logprobs") is not None:
            out["top_logprobs"] = body["top_logprobs"]
    elif body.get("top_logprobs") not in (None, 0):
        raise _bad("top_logprobs needs logprobs: true.")
    if body.get("logit_bias") not in (None, {}):
        raise _bad("logit_bias is not supported by this model's Responses API.")
    if body.get("modalities") not in (None, ["text"]):
        raise _bad("modalities other than ['text'] are not supported by this model's Responses API.")
    out["stream"] = target.stream
    return out


# ---------------------------------------------------------------------------------------------------------------
# Answers


def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, completion = count(usage.get("input_tokens")), count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": count(usage.get("total_tokens")) or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count(_dict(usage.get("input_tokens_details")).get(
            "cached_tokens")), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": count(_dict(usage.get("output_tokens_details")).get("reasoning_tokens")),
            "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _annotations(annotations: Any) -> list[dict[str, Any]]:
    out = []
    for annotation in annotations if isinstance(annotations, list) else ():
        if isinstance(annotation, dict) and annotation.get("type") == "url_citation":
            out.append({"type": "url_citation", "url_citation": {
                key: annotation[key] for key in ("start_index", "end_index", "title", "url") if key in annotation}})
    return out


def _finish_reason(response: Mapping[str, Any], calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = _dict(response.get("incomplete_details")).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def _call(item: Mapping[str, Any]) -> dict[str, Any]:
    if item.get("type") == "custom_tool_call":
        return {"id": item.get("call_id"), "type": "custom",
                "custom": {"name": item.get("name"), "input": item.get("input", "")}}
    return {"id": item.get("call_id"), "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}}


def convert_response(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    texts: list[str] = []
    refusals: list[str] = []
    annotations: list[dict[str, Any]] = []
    logprobs: list[Any] = []
    calls: list[dict[str, Any]] = []
    for item in body.get("output") or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            pieces = []
            for part in item.get("content") or ():
                part_kind = part.get("type") if isinstance(part, dict) else None
                if part_kind == "output_text":
                    pieces.append(part.get("text", ""))
                    if isinstance(part.get("logprobs"), list):
                        logprobs.extend(part["logprobs"])
                    annotations.extend(_annotations(part.get("annotations")))
                elif part_kind == "refusal":
                    refusals.append(part.get("refusal", ""))
            if pieces:
                texts.append("".join(pieces))
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(_call(item))
    message: dict[str, Any] = {"role": "assistant", "content": _SEPARATOR.join(texts) if texts else None,
                               "refusal": "".join(refusals) if refusals else None, "annotations": annotations}
    if calls:
        message["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": f"chatcmpl-{_suffix(body.get('id'), 'resp_')}",
        "object": "chat.completion",
        "created": _int(body.get("created_at"), int(time.time())),
        "model": target.model,
        "choices": [{"index": 0, "message": message,
                     "logprobs": {"content": logprobs, "refusal": None} if logprobs else None,
                     "finish_reason": _finish_reason(body, bool(calls))}],
        "usage": _usage(body.get("usage")),
        "service_tier": body.get("service_tier") if isinstance(body.get("service_tier"), str) else "default",
        "system_fingerprint": None,
    }
    return out


# ---------------------------------------------------------------------------------------------------------------
# Streams


_CALL_TYPES = ("function_call", "custom_tool_call")
# Between the texts of two message items (e.g. a commentary message, then the final answer).
_SEPARATOR = "\n\n"


class ResponsesToChatStream(StreamConverter):
    """Responses events → chat completion chunks (see the module docstring)."""

    def __init__(self, target: Target, include_usage: bool) -> None:
        self._target = target
        self._include_usage = include_usage
        self._id = ""
        self._created = 0
        self._started = False
        # Tool calls by output item id: (chat tool index, kind, what of the arguments/input was streamed).
        self._calls: dict[str, list[Any]] = {}
        self._ended = False
        # Text was sent, and whether a new message item began since (its text starts after a blank line).
        self._texted = False
        self._separate = False

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None,
               usage: dict[str, Any] | None = None, logprobs: Any = None) -> SSEEvent:
        chunk: dict[str, Any] = {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                                 "model": self._target.model, "system_fingerprint": None}
        chunk["choices"] = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]
        if self._include_usage:
            chunk["usage"] = usage
        return data_event(chunk)

    def _start(self, response: Mapping[str, Any], out: list[SSEEvent]) -> None:
        if self._started:
            return
        self._started = True
        self._id = f"chatcmpl-{_suffix(response.get('id'), 'resp_')}"
        self._created = _int(response.get("created_at"), int(time.time()))
        out.append(self._chunk({"role": "assistant", "content": "", "refusal": None}))

    def _call_delta(self, item_id: str, piece: str, name: str | None = None, call_id: Any = None) -> SSEEvent:
        index, kind, _ = self._calls[item_id]
        self._calls[item_id][2] += len(piece)
        entry: dict[str, Any] = {"index": index}
        if name is not None:
            entry["id"] = call_id
            entry["type"] = "custom" if kind == "custom_tool_call" else "function"
        if kind == "custom_tool_call":
            entry["custom"] = {"input": piece} if name is None else {"name": name, "input": piece}
        else:
            entry["function"] = {"arguments": piece} if name is None else {"name": name, "arguments": piece}
        return self._chunk({"tool_calls": [entry]})

    def _item(self, name: str, item: Mapping[str, Any], out: list[SSEEvent]) -> None:
        kind = item.get("type")
        if kind == "message" and name == "response.output_item.added":
            self._separate = self._texted
        if kind not in _CALL_TYPES:
            return
        item_id = str(item.get("id") or item.get("call_id") or len(self._calls))
        field = "input" if kind == "custom_tool_call" else "arguments"
        value = item.get(field)
        full = value if isinstance(value, str) else ""
        if item_id not in self._calls:
            self._calls[item_id] = [len(self._calls), kind, 0]
            out.append(self._call_delta(item_id, full if name == "response.output_item.done" else "",
                                        str(item.get("name") or ""), item.get("call_id")))
            if name == "response.output_item.done":
                return
        if name == "response.output_item.done":
            sent = self._calls[item_id][2]
            if len(full) > sent:
                out.append(self._call_delta(item_id, full[sent:]))

    def _end(self, response: Mapping[str, Any], out: list[SSEEvent]) -> None:
        self._start(response, out)
        output = response.get("output")
        calls = bool(self._calls) or any(isinstance(item, dict) and item.get("type") in _CALL_TYPES
                                         for item in output or ())
        out.append(self._chunk({}, _finish_reason(response, calls)))
        if self._include_usage:
            out.append(self._chunk(None, usage=_usage(response.get("usage"))))
        out.append(OPENAI_DONE)
        self._ended = True

    def _failed(self, data: Mapping[str, Any], out: list[SSEEvent]) -> None:
        error = _dict(data.get("error")) or _dict(_dict(data.get("response")).get("error")) or dict(data)
        message = error.get("message")
        code = error.get("code")
        status = 429 if code in ("rate_limit_exceeded", "insufficient_quota") else 500
        text = message if isinstance(message, str) and message else "The upstream API failed the answer."
        out.append(error_bodies.stream_error(status, text, code if isinstance(code, str) else None,
                                             ClientFormat.OPENAI))
        self._ended = True

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._ended:
            return []
        data = parsed(event)
        if not isinstance(data, dict):
            return []
        name = event.name or str(data.get("type", ""))
        out: list[SSEEvent] = []
        if name in ("response.created", "response.in_progress"):
            self._start(_dict(data.get("response")), out)
        elif name == "response.output_text.delta":
            self._start({}, out)
            if isinstance(data.get("delta"), str) and data["delta"]:
                text = _SEPARATOR + data["delta"] if self._separate else data["delta"]
                self._texted, self._separate = True, False
                logprobs = data.get("logprobs")
                out.append(self._chunk({"content": text}, logprobs={"content": logprobs, "refusal": None}
                                       if isinstance(logprobs, list) and logprobs else None))
        elif name == "response.refusal.delta":
            self._start({}, out)
            if isinstance(data.get("delta"), str) and data["delta"]:
                out.append(self._chunk({"refusal": data["delta"]}))
        elif name in ("response.output_item.added", "response.output_item.done"):
            self._start({}, out)
            self._item(name, _dict(data.get("item")), out)
        elif name in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            item_id = data.get("item_id")
            if isinstance(item_id, str) and item_id in self._calls and isinstance(data.get("delta"), str):
                out.append(self._call_delta(item_id, data["delta"]))
        elif name in ("response.completed", "response.incomplete"):
            self._end(_dict(data.get("response")), out)
        elif name in ("response.failed", "error"):
            self._failed(data, out)
        return out

    def finish(self) -> list[SSEEvent]:
        if self._ended:
            return []
        out: list[SSEEvent] = []
        self._end({"status": "completed"}, out)
        return out


class OpenAIToResponses(Translator):
    client = ClientFormat.OPENAI
    upstream = ClientFormat.RESPONSES

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        passed = {name: value for name, value in headers.items()
                  if name.lower() in _PASSED_HEADERS or name.lower().startswith(_PASSED_PREFIXES)}
        return Conversion(convert_request(body, target), passed)

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        return convert_response(body, target)

    def stream(self, target: Target) -> StreamConverter:
        return ResponsesToChatStream(target, include_usage=target.include_usage)


TRANSLATOR = OpenAIToResponses()
