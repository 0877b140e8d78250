"""OpenAI Responses client (Codex CLI, the openai SDK's `client.responses`) served by OpenAI chat completions
(openai, azure-openai).

Request fields (Responses → Chat Completions); `null` counts as absent everywhere:

- `model`: replaced by `target.model` (the platform maps it to the account's model)
- `instructions` (string): first message, `role: system`
- `input` (string): one `user` message
- `input` (items): see the item table below
- `tools` `function`: `{type: function, function: {name, description, parameters, strict}}` (schemas by reference;
  `strict` only when given: Responses' implicit strict default is not applied, since chat completions refuses
  schemas that miss strict mode's rules instead of normalising them)
- `tools` `custom` (Codex `apply_patch` …): a function taking one string argument `input` (`{type: object,
  properties: {input: {type: string}}, required: [input], additionalProperties: false}`); the tool's grammar (or
  text format) is appended to its description. The model's call comes back as a `custom_tool_call` whose `input`
  is that string
- `tools` `namespace` (Codex's sub-agent and MCP groups): its children as functions named `<namespace>__<name>`
  (`responses_tools`); their calls come back as `function_call`s with `namespace` set
- `tools` `web_search*`: left out (`responses_tools`: Codex offers it on every turn; the model answers without it)
- `tools` `file_search`, `code_interpreter`, `computer_use*`, `local_shell`, `shell`, `image_generation`, `mcp`,
  `apply_patch`, …: 400 naming the tool type: chat completions cannot run Responses' built-in tools
- `tool_choice`: `auto`/`none`/`required` as is; `{type: function/custom, name}` → `{type: function, function:
  {name}}`; `{type: allowed_tools, mode, tools}` → chat's `{type: allowed_tools, allowed_tools: {mode, tools}}`; a
  built-in tool choice → 400
- `parallel_tool_calls`: `parallel_tool_calls`; with no tools consumed (chat completions refuses it without tools,
  and it means nothing there); `tool_choice` `auto`/`none` without tools likewise
- `max_output_tokens`: `max_completion_tokens`
- `temperature`, `top_p`, `frequency_penalty`, `presence_penalty`: same names
- `reasoning.effort`: `reasoning_effort`
- `reasoning.summary`, `reasoning.generate_summary`: consumed: chat completions returns no reasoning summary (the
  answer has no reasoning item, its reasoning tokens are in usage)
- `text.format` `text`: nothing to do
- `text.format` `json_object`: `response_format: {type: json_object}`
- `text.format` `json_schema`: `response_format: {type: json_schema, json_schema: {name, schema, description,
  strict}}`
- `text.verbosity`: `verbosity`
- `store`, `metadata`, `user`, `safety_identifier`, `prompt_cache_key`, `prompt_cache_retention`, `service_tier`:
  same names (chat completions has each)
- `include`: `reasoning.encrypted_content` consumed (chat completions has no encrypted reasoning: the answer
  carries none); the built-in tools' values (`file_search_call.results`, `web_search_call.*`,
  `code_interpreter_call.outputs`, `computer_call_output.output.image_url`) and `message.input_image.image_url`
  consumed (nothing they would add can occur); `message.output_text.logprobs` 400
- `top_logprobs`: 0 consumed; more: 400 (token logprobs are not translated)
- `truncation`: `disabled` consumed (chat completions never truncates either); `auto` 400 (the gateway does not
  drop context)
- `stream`: replaced by `target.stream`, with `stream_options: {include_usage: true}` so the final usage is known
- `stream_options`: consumed (`include_obfuscation`: obfuscation is not produced)
- `background`: `false` consumed; `true` 400 (no stored background responses)
- `previous_response_id`, `conversation`, `prompt`: 400: the gateway keeps no conversation state nor stored
  prompts; send the whole conversation
- `max_tool_calls`, `context_management`: 400: no chat completions equivalent
- `client_metadata`: consumed: Codex's client telemetry
- anything else: 400 naming the field

Input items:

- `message` (or an item with `role` and no `type`) role `system`/`developer`: a `system`/`developer` message (text
  parts only; an image there is 400)
- `message` role `user`: `user` message: string content as is; `input_text` → `text`, `input_image` with
  `image_url` → `image_url` (`detail` kept), with `file_id` → 400 (files live on one account); `input_file` with
  `file_data` → `file` (`file_data`, `filename`), with `file_id`/`file_url` → 400
- `message` role `assistant`: `assistant` message: `output_text`/`input_text` texts joined → `content`, `refusal`
  parts → `refusal`; `id`, `status`, `phase` consumed
- `function_call`: a `tool_calls` entry (`id` = `call_id`, `function: {name, arguments}`) on the assistant message
  before it (consecutive calls merged into one assistant message)
- `custom_tool_call`: a `tool_calls` entry calling the function the custom tool became, `arguments` = `{"input":
  <input>}`
- `function_call_output`, `custom_tool_call_output`: `tool` message (`tool_call_id` = `call_id`): string output as
  is, text parts as text parts; image parts go to one `user` message after the run of tool messages (chat tool
  messages take text only); file parts 400
- `reasoning`: dropped: chat completions takes no reasoning input, neither its summary nor its `encrypted_content`
  (OpenAI's own or sealed by another platform)
- `additional_tools` (Codex): its `tools` join the request's tools (mapped as above)
- `item_reference`, `compaction`, `local_shell_call(_output)`, other built-in calls, unknown types: 400 naming the
  type

Headers: `user-agent` and `x-stainless-*` pass (the SDK's own); Codex's session headers, `openai-beta` (Responses
betas, e.g. WebSocket) and the rest select Responses behaviours: consumed.

Answers: `chat.completion` → a `response` object (`resp_` + the completion id; `msg_`/`fc_`/`ctc_` item ids from it
and the call ids); `message.content` → a `message` item with one `output_text` (`url_citation` annotations
flattened), `refusal` → a `refusal` part; `reasoning_content` (OpenAI-compatible servers) → a `reasoning` item with
one `summary_text`; tool calls → `function_call` items (`call_id` = the chat call id; `namespace` for a namespaced
tool), or `custom_tool_call` for a tool the request declared custom or a native chat `custom` call (`Target.tools`).
`finish_reason` `length` → `status: incomplete`, `incomplete_details.reason: max_output_tokens`;
`content_filter` → incomplete, `content_filter`; otherwise `completed`. Usage: `input_tokens` = prompt tokens,
`cached_tokens` = `prompt_tokens_details.cached_tokens`, `output_tokens` = completion tokens, `reasoning_tokens` =
`completion_tokens_details.reasoning_tokens`. The echo fields (`tools`, `tool_choice`, `instructions`, `text`,
`reasoning`, sampling) carry the API's defaults: a translated answer does not see the request.

Streams: `response.created` and `response.in_progress` at the first chunk; text deltas → a `message` item
(`output_item.added`, `content_part.added`, `output_text.delta`…, `output_text.done`, `content_part.done`,
`output_item.done`); `refusal` deltas → a `message` item with a `refusal` part (`response.refusal.delta`/`done`);
`reasoning_content` deltas → a `reasoning` item with summary deltas; tool calls are collected and
emitted whole when the choice finishes (added, one arguments delta, done, item done: a call is only known to be a
custom one once its arguments are complete); the usage chunk → usage; `[DONE]` → `response.completed` (or
`response.incomplete`) with the whole response. An in-stream `error` chunk → the Responses `error` event, then
`response.failed`.
"""

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import error_bodies, responses_tools
from switchboard_edge.translate.base import (
    ClientTool,
    Conversion,
    StreamConverter,
    Target,
    Translator,
    named_event,
    parsed,
)

_PASSED_HEADERS = frozenset({"user-agent"})
_PASSED_PREFIXES = ("x-stainless-",)
_SAME_NAME = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "store",
              "metadata", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier")
_CONSUMED = frozenset({"client_metadata", "stream_options", "stream", "model"})
_HANDLED = frozenset({"instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
                      "reasoning", "text",
                      "include", "top_logprobs", "truncation", "background", "previous_response_id",
                      "conversation", "prompt", "max_tool_calls", "context_management"})
_STATELESS = {
    "previous_response_id": "previous_response_id is not supported here: the gateway keeps no conversation state. "
                            "Send the whole conversation in input.",
    "conversation": "conversation is not supported here: the gateway keeps no conversation state. Send the whole "
                    "conversation in input.",
    "prompt": "prompt (a stored prompt template) is not supported here: the gateway keeps no stored prompts.",
    "max_tool_calls": "max_tool_calls is not supported by this model's chat completions API.",
    "context_management": "context_management is not supported by this model's chat completions API.",
}
_CONSUMED_INCLUDES = frozenset({
    "reasoning.encrypted_content", "file_search_call.results", "web_search_call.results",
    "web_search_call.action.sources", "code_interpreter_call.outputs", "computer_call_output.output.image_url",
    "message.input_image.image_url",
})
_BUILT_IN_CALLS = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
    "image_generation_call", "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
    "apply_patch_call", "apply_patch_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response",
})


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


def _custom_function(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A custom (freeform) tool as a function taking one string argument `input`."""
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _bad("tools: a custom tool needs a name.")
    description = tool.get("description") if isinstance(tool.get("description"), str) else ""
    form = tool.get("format")
    if isinstance(form, dict) and form.get("type") == "grammar":
        syntax = form.get("syntax", "lark")
        hint = f"The input must follow this {syntax} grammar:\n{form.get('definition', '')}"
        description = f"{description}\n\n{hint}" if description else hint
    function: dict[str, Any] = {
        "name": name,
        "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"],
                       "additionalProperties": False},
    }
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise _bad("tools: every tool must be an object.")
    kind = tool.get("type")
    if kind == "custom":
        return _custom_function(tool)
    if kind != "function":
        raise _bad(f"tools: the built-in tool type '{kind}' is not supported by this model's chat completions API; "
                   "only function and custom tools are.")
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _bad("tools: a function tool needs a name.")
    function: dict[str, Any] = {"name": name}
    for field in ("description", "parameters", "strict"):
        if tool.get(field) is not None:
            function[field] = tool[field]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom") and isinstance(choice.get("name"), str):
            return {"type": "function",
                    "function": {"name": responses_tools.upstream_name(choice["name"], choice.get("namespace"))}}
        if kind == "allowed_tools" and isinstance(choice.get("tools"), list):
            tools = []
            for tool in choice["tools"]:
                if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
                    raise _bad("tool_choice: allowed_tools may only name function and custom tools here.")
                tools.append({"type": "function", "function": {"name": tool.get("name")}})
            return {"type": "allowed_tools",
                    "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": tools}}
        raise _bad(f"tool_choice: the tool type '{kind}' is not supported by this model's chat completions API.")
    raise _bad("tool_choice must be auto, none, required or a named function/custom tool.")


def _text_format(text: Any, out: dict[str, Any]) -> None:
    if not isinstance(text, dict):
        raise _bad("text must be an object.")
    for field, value in text.items():
        if value is None:
            continue
        if field == "verbosity":
            out["verbosity"] = value
        elif field == "format":
            kind = value.get("type") if isinstance(value, dict) else None
            if kind == "text":
                continue
            if kind == "json_object":
                out["response_format"] = {"type": "json_object"}
            elif kind == "json_schema":
                schema: dict[str, Any] = {"name": value.get("name", "response"), "schema": value.get("schema")}
                for extra in ("description", "strict"):
                    if value.get(extra) is not None:
                        schema[extra] = value[extra]
                out["response_format"] = {"type": "json_schema", "json_schema": schema}
            else:
                raise _bad(f"text.format: the type '{kind}' is not supported by this model's chat completions API.")
        else:
            raise _bad(f"text.{field} is not supported by this model's chat completions API.")


def _reasoning(reasoning: Any, out: dict[str, Any]) -> None:
    if not isinstance(reasoning, dict):
        raise _bad("reasoning must be an object.")
    for field, value in reasoning.items():
        if value is None or field in ("summary", "generate_summary"):
            continue
        if field == "effort":
            out["reasoning_effort"] = value
        else:
            raise _bad(f"reasoning.{field} is not supported by this model's chat completions API.")


def _include(values: Any) -> None:
    if not isinstance(values, list):
        raise _bad("include must be an array.")
    for value in values:
        if not isinstance(value, str) or value not in _CONSUMED_INCLUDES:
            raise _bad(f"include: '{value}' is not supported by this model's chat completions API.")


def _user_parts(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            parts.append(_image(part, where))
        elif kind == "input_file":
            if not isinstance(part.get("file_data"), str):
                raise _bad(f"{where}: input_file parts need file_data here (file_id and file_url refer to files "
                           "this gateway cannot fetch for the serving account).")
            file: dict[str, Any] = {"file_data": part["file_data"]}
            if isinstance(part.get("filename"), str):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            raise _bad(f"{where}: the content part type '{kind}' is not supported by this model's chat completions "
                       "API.")
    return parts


def _image(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise _bad(f"{where}: input_image needs image_url here (file_id refers to a file this gateway cannot "
                   "fetch for the serving account).")
    image: dict[str, Any] = {"url": url}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _system_parts(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text"):
            raise _bad(f"{where}: system and developer messages take only text parts on chat completions "
                       f"(got '{kind}').")
        parts.append({"type": "text", "text": part.get("text", "")})
    return parts


class _Messages:
    """Chat messages being assembled from Responses input items."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        # Image parts of tool outputs, sent as one user message after the run of tool messages.
        self.pending_images: list[dict[str, Any]] = []

    def flush(self) -> None:
        if self.pending_images:
            self.out.append({"role": "user", "content": self.pending_images})
            self.pending_images = []

    def add(self, message: dict[str, Any]) -> None:
        self.flush()
        self.out.append(message)

    def call(self, entry: dict[str, Any]) -> None:
        """A tool call joins the assistant message right before it (text or calls), else opens one."""
        last = self.out[-1] if self.out and not self.pending_images else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(entry)
        else:
            self.add({"role": "assistant", "content": None, "tool_calls": [entry]})

    def tool(self, call_id: Any, output: Any, where: str) -> None:
        if not isinstance(call_id, str):
            raise _bad(f"{where}.call_id must be a string.")
        if isinstance(output, str):
            content: Any = output
        elif isinstance(output, list):
            content = []
            for part in output:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in ("input_text", "output_text", "text"):
                    content.append({"type": "text", "text": part.get("text", "")})
                elif kind == "input_image":
                    self.pending_images.append(_image(part, where))
                else:
                    raise _bad(f"{where}: the output part type '{kind}' is not supported by this model's chat "
                               "completions API.")
            if not content:
                content = ""
        else:
            content = orjson.dumps(output).decode() if output is not None else ""
        # Tool messages stay together: images wait for the end of the run.
        self.out.append({"role": "tool", "tool_call_id": call_id, "content": content})


def _assistant(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    content = item.get("content")
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or an array of content parts.")
    texts, refusals = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text", "text"):
            texts.append(part.get("text", ""))
        elif kind == "refusal":
            refusals.append(part.get("refusal", ""))
        else:
            raise _bad(f"{where}: the assistant content part type '{kind}' is not supported by this model's chat "
                       "completions API.")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _input(items: Any, messages: _Messages, tools: list[dict[str, Any]]) -> None:
    if isinstance(items, str):
        messages.add({"role": "user", "content": items})
        return
    if not isinstance(items, list):
        raise _bad("input must be a string or an array of input items.")
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{where} must be an object.")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                messages.add({"role": role, "content": _system_parts(item.get("content"), where)})
            elif role == "user":
                messages.add({"role": "user", "content": _user_parts(item.get("content"), where)})
            elif role == "assistant":
                messages.add(_assistant(item, where))
            else:
                raise _bad(f"{where}.role '{role}' is not supported.")
        elif kind == "function_call":
            name = responses_tools.upstream_name(item.get("name"), item.get("namespace"))
            messages.call({"id": item.get("call_id"), "type": "function",
                           "function": {"name": name, "arguments": item.get("arguments", "")}})
        elif kind == "custom_tool_call":
            arguments = orjson.dumps({"input": item.get("input", "")}).decode()
            name = responses_tools.upstream_name(item.get("name"), item.get("namespace"))
            messages.call({"id": item.get("call_id"), "type": "function",
                           "function": {"name": name, "arguments": arguments}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.tool(item.get("call_id"), item.get("output"), where)
        elif kind == "reasoning":
            continue  # chat completions takes no reasoning input (see the module's table)
        elif kind == "additional_tools":
            extra = item.get("tools")
            if not isinstance(extra, list):
                raise _bad(f"{where}.tools must be an array.")
            tools.extend(_tool(tool) for tool, _ in responses_tools.flattened(extra, f"{where}.tools"))
        elif kind == "item_reference":
            raise _bad(f"{where}: item_reference is not supported here: the gateway keeps no stored items. Send the "
                       "items themselves.")
        elif isinstance(kind, str) and kind in _BUILT_IN_CALLS:
            raise _bad(f"{where}: the item type '{kind}' belongs to a built-in tool that this model's chat "
                       "completions API cannot run.")
        else:
            raise _bad(f"{where}: the item type '{kind}' is not supported by this model's chat completions API.")
    messages.flush()


def convert_request(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    out: dict[str, Any] = {"model": target.model}
    for field, value in body.items():
        if value is None or field in _CONSUMED:
            continue
        if field in _SAME_NAME:
            out[field] = value
        elif field not in _HANDLED:
            raise _bad(f"{field} is not supported by this model's chat completions API.")
    messages = _Messages()
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("instructions must be a string.")
        messages.add({"role": "system", "content": instructions})
    tools: list[dict[str, Any]] = []
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise _bad("tools must be an array.")
        tools.extend(_tool(tool) for tool, _ in responses_tools.flattened(body["tools"], "tools"))
    if body.get("input") is None:
        raise _bad("input is required: the gateway keeps no conversation state.")
    _input(body["input"], messages, tools)
    out["messages"] = messages.out
    if tools:
        out["tools"] = tools
    if body.get("tool_choice") is not None:
        choice = _tool_choice(body["tool_choice"])
        if tools or choice not in ("auto", "none"):
            out["tool_choice"] = choice
    if body.get("parallel_tool_calls") is not None and tools:
        out["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("reasoning") is not None:
        _reasoning(body["reasoning"], out)
    if body.get("text") is not None:
        _text_format(body["text"], out)
    if body.get("include") is not None:
        _include(body["include"])
    if body.get("top_logprobs") not in (None, 0):
        raise _bad("top_logprobs is not supported here: token logprobs are not translated to the Responses format.")
    if body.get("truncation") not in (None, "disabled"):
        raise _bad("truncation 'auto' is not supported here: the gateway does not drop context; use 'disabled'.")
    if body.get("background") not in (None, False):
        raise _bad("background responses are not supported here: the gateway stores no responses.")
    for field, message in _STATELESS.items():
        if body.get(field) is not None:
            raise _bad(message)
    out["stream"] = target.stream
    if target.stream:
        out["stream_options"] = {"include_usage": True}
    return out


# ---------------------------------------------------------------------------------------------------------------
# Answers


def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    input_tokens, output_tokens = count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": count(prompt.get("cached_tokens")) if isinstance(prompt, dict)
                                 else 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": count(completion.get("reasoning_tokens"))
                                  if isinstance(completion, dict) else 0},
        "total_tokens": count(usage.get("total_tokens")) or input_tokens + output_tokens,
    }


def _annotations(annotations: Any) -> list[dict[str, Any]]:
    out = []
    for annotation in annotations if isinstance(annotations, list) else ():
        citation = annotation.get("url_citation") if isinstance(annotation, dict) else None
        if annotation.get("type") == "url_citation" and isinstance(citation, dict):
            out.append({"type": "url_citation", **citation})
    return out


def _text_part(text: str, annotations: Any = None) -> dict[str, Any]:
    return {"type": "output_text", "annotations": _annotations(annotations), "logprobs": [], "text": text}


def _call_item(call_id: str, name: str, arguments: str, tools: Mapping[str, ClientTool] | None,
               kind: str = "function", status: str = "completed") -> dict[str, Any]:
    """The client's item for a tool call: a `custom_tool_call` or a `function_call` (with its namespace), as
    the request declared the tool (`responses_tools.answered`)."""
    suffix = _suffix(call_id, "call_")
    namespace = None
    if kind == "custom":
        custom: str | None = arguments
    else:
        name, namespace, custom = responses_tools.answered(name, arguments, tools)
    return responses_tools.call_item(call_id, suffix, name, arguments, namespace, custom, status)


def _reasoning_item(rid: str, text: str) -> dict[str, Any]:
    return {"id": f"rs_{rid}", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _message_item(mid: str, content: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"id": f"msg_{mid}", "type": "message", "status": status, "content": content, "role": "assistant"}


_FINISHES = {"length": "max_output_tokens", "content_filter": "content_filter"}


def envelope(rid: str, created: int, target: Target, status: str) -> dict[str, Any]:
    """A Responses `response` object with the API's echo fields (defaults: the request is not seen here)."""
    return {
        "id": f"resp_{rid}", "object": "response", "created_at": created, "status": status, "background": False,
        "completed_at": None, "error": None, "frequency_penalty": 0.0, "incomplete_details": None,
        "instructions": None, "max_output_tokens": None, "max_tool_calls": None, "model": target.model,
        "output": [], "parallel_tool_calls": True, "presence_penalty": 0.0, "previous_response_id": None,
        "prompt_cache_key": None, "reasoning": {"effort": None, "summary": None}, "safety_identifier": None,
        "service_tier": "auto", "store": False, "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
        "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled", "usage": None, "user": None, "metadata": {},
    }


def _finish(response: dict[str, Any], finish_reason: Any) -> None:
    reason = _FINISHES.get(finish_reason) if isinstance(finish_reason, str) else None
    if reason is not None:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}
    else:
        response["status"] = "completed"
        response["completed_at"] = int(time.time())


def convert_response(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    rid = _suffix(body.get("id"), "chatcmpl-")
    created = _int(body.get("created"), int(time.time()))
    response = envelope(rid, created, target, "completed")
    choices = body.get("choices")
    choice = _dict(choices[0]) if isinstance(choices, list) and choices else {}
    message = _dict(choice.get("message"))
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(_reasoning_item(rid, reasoning))
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append(_text_part(message["content"], message.get("annotations")))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append({"type": "refusal", "refusal": message["refusal"]})
    if content:
        cut = choice.get("finish_reason") in _FINISHES
        output.append(_message_item(rid, content, "incomplete" if cut else "completed"))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        if call.get("type") == "custom" and isinstance(call.get("custom"), dict):
            output.append(_call_item(call.get("id", ""), call["custom"].get("name", ""),
                                     call["custom"].get("input", ""), target.tools, "custom"))
        else:
            function = _dict(call.get("function"))
            output.append(_call_item(call.get("id", ""), function.get("name", ""), function.get("arguments", ""),
                                     target.tools))
    response["output"] = output
    _finish(response, choice.get("finish_reason"))
    if isinstance(body.get("service_tier"), str):
        response["service_tier"] = body["service_tier"]
    response["usage"] = _usage(body.get("usage"))
    return response


# ---------------------------------------------------------------------------------------------------------------
# Streams


class _Call:
    __slots__ = ("id", "name", "kind", "arguments")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.kind = "function"
        self.arguments: list[str] = []


class ChatToResponsesStream(StreamConverter):
    """Chat completion chunks → the Responses event sequence (see the module docstring)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._seq = 0
        self._rid = ""
        self._response: dict[str, Any] | None = None
        self._output: list[dict[str, Any]] = []
        # The item open now: "message" or "reasoning" (with its text so far), or None.
        self._open: str | None = None
        self._text: list[str] = []
        self._annotations: list[Any] = []
        self._calls: dict[int, _Call] = {}
        self._finish_reason: Any = None
        self._choice_done = False
        self._usage: dict[str, Any] | None = None
        self._ended = False

    def _event(self, name: str, data: dict[str, Any]) -> SSEEvent:
        payload = {"type": name, **data, "sequence_number": self._seq}
        self._seq += 1
        return named_event(name, payload)

    def _start(self, chunk: Mapping[str, Any] | None, out: list[SSEEvent]) -> dict[str, Any]:
        if self._response is not None:
            return self._response
        chunk = chunk or {}
        self._rid = _suffix(chunk.get("id") or None, "chatcmpl-")
        created = _int(chunk.get("created"), int(time.time()))
        self._response = envelope(self._rid, created, self._target, "in_progress")
        out.append(self._event("response.created", {"response": self._response}))
        out.append(self._event("response.in_progress", {"response": self._response}))
        return self._response

    def _item_id(self, prefix: str) -> str:
        return f"{prefix}_{self._rid}" if len(self._output) == 0 else f"{prefix}_{self._rid}_{len(self._output)}"

    def _open_item(self, kind: str, out: list[SSEEvent]) -> None:
        if self._open == kind:
            return
        self._close(out)
        self._open = kind
        index = len(self._output)
        if kind in ("message", "refusal"):
            item = {"id": self._item_id("msg"), "type": "message", "status": "in_progress", "content": [],
                    "role": "assistant"}
            part = _text_part("") if kind == "message" else {"type": "refusal", "refusal": ""}
            out.append(self._event("response.output_item.added", {"item": item, "output_index": index}))
            out.append(self._event("response.content_part.added", {
                "content_index": 0, "item_id": item["id"], "output_index": index, "part": part}))
        else:
            item = {"id": self._item_id("rs"), "type": "reasoning", "summary": []}
            out.append(self._event("response.output_item.added", {"item": item, "output_index": index}))
            out.append(self._event("response.reasoning_summary_part.added", {
                "item_id": item["id"], "output_index": index, "part": {"type": "summary_text", "text": ""},
                "summary_index": 0}))

    def _close(self, out: list[SSEEvent]) -> None:
        kind, self._open = self._open, None
        if kind is None:
            return
        index = len(self._output)
        text = "".join(self._text)
        self._text = []
        if kind in ("message", "refusal"):
            item_id = self._item_id("msg")
            if kind == "message":
                part = _text_part(text, self._annotations)
                self._annotations = []
                out.append(self._event("response.output_text.done", {
                    "content_index": 0, "item_id": item_id, "logprobs": [], "output_index": index, "text": text}))
            else:
                part = {"type": "refusal", "refusal": text}
                out.append(self._event("response.refusal.done", {
                    "content_index": 0, "item_id": item_id, "output_index": index, "refusal": text}))
            out.append(self._event("response.content_part.done", {
                "content_index": 0, "item_id": item_id, "output_index": index, "part": part}))
            status = "incomplete" if self._finish_reason in _FINISHES else "completed"
            item = {"id": item_id, "type": "message", "status": status, "content": [part], "role": "assistant"}
        else:
            item_id = self._item_id("rs")
            summary = {"type": "summary_text", "text": text}
            out.append(self._event("response.reasoning_summary_text.done", {
                "item_id": item_id, "output_index": index, "summary_index": 0, "text": text}))
            out.append(self._event("response.reasoning_summary_part.done", {
                "item_id": item_id, "output_index": index, "part": summary, "summary_index": 0}))
            item = {"id": item_id, "type": "reasoning", "summary": [summary]}
        out.append(self._event("response.output_item.done", {"item": item, "output_index": index}))
        self._output.append(item)

    def _emit_calls(self, out: list[SSEEvent]) -> None:
        self._close(out)
        for position in sorted(self._calls):
            call = self._calls[position]
            arguments = "".join(call.arguments)
            index = len(self._output)
            done = _call_item(call.id, call.name, arguments, self._target.tools, call.kind)
            if done["type"] == "custom_tool_call":
                out.append(self._event("response.output_item.added", {
                    "item": {**done, "status": "in_progress", "input": ""}, "output_index": index}))
                out.append(self._event("response.custom_tool_call_input.delta", {
                    "delta": done["input"], "item_id": done["id"], "output_index": index}))
                out.append(self._event("response.custom_tool_call_input.done", {
                    "input": done["input"], "item_id": done["id"], "output_index": index}))
            else:
                out.append(self._event("response.output_item.added", {
                    "item": {**done, "status": "in_progress", "arguments": ""}, "output_index": index}))
                out.append(self._event("response.function_call_arguments.delta", {
                    "delta": arguments, "item_id": done["id"], "output_index": index}))
                out.append(self._event("response.function_call_arguments.done", {
                    "arguments": arguments, "item_id": done["id"], "output_index": index}))
            out.append(self._event("response.output_item.done", {"item": done, "output_index": index}))
            self._output.append(done)
        self._calls = {}

    def _tool_delta(self, delta: Mapping[str, Any]) -> None:
        for entry in delta.get("tool_calls") or ():
            if not isinstance(entry, dict):
                continue
            position = _int(entry.get("index"), 0) if "index" in entry else len(self._calls)
            call = self._calls.get(position)
            if call is None:
                call = self._calls[position] = _Call()
            if isinstance(entry.get("id"), str) and entry["id"]:
                call.id = entry["id"]
            if entry.get("type") == "custom":
                call.kind = "custom"
            body = entry.get("custom") if call.kind == "custom" else entry.get("function")
            if isinstance(body, dict):
                if isinstance(body.get("name"), str) and body["name"]:
                    call.name = body["name"]
                piece = body.get("input") if call.kind == "custom" else body.get("arguments")
                if isinstance(piece, str) and piece:
                    call.arguments.append(piece)

    def _choice(self, choice: Mapping[str, Any], out: list[SSEEvent]) -> None:
        delta = _dict(choice.get("delta"))
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            self._open_item("reasoning", out)
            item_id = self._item_id("rs")
            self._text.append(reasoning)
            out.append(self._event("response.reasoning_summary_text.delta", {
                "delta": reasoning, "item_id": item_id, "output_index": len(self._output), "summary_index": 0}))
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._open_item("message", out)
            self._text.append(content)
            out.append(self._event("response.output_text.delta", {
                "content_index": 0, "delta": content, "item_id": self._item_id("msg"), "logprobs": [],
                "output_index": len(self._output)}))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._open_item("refusal", out)
            self._text.append(refusal)
            out.append(self._event("response.refusal.delta", {
                "content_index": 0, "delta": refusal, "item_id": self._item_id("msg"),
                "output_index": len(self._output)}))
        if isinstance(delta.get("annotations"), list):
            self._annotations.extend(delta["annotations"])
        if delta.get("tool_calls"):
            self._tool_delta(delta)
        if choice.get("finish_reason") is not None and not self._choice_done:
            self._finish_reason = choice["finish_reason"]
            self._choice_done = True
            self._emit_calls(out)

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._ended:
            return []
        out: list[SSEEvent] = []
        chunk = parsed(event)
        if chunk is None:
            if event.data.strip() == b"[DONE]":
                return self._terminal()
            return out
        if not isinstance(chunk, dict):
            return out
        if "error" in chunk:
            return self._failed(chunk["error"])
        choices = chunk.get("choices")
        if self._response is None and (chunk.get("id") or (isinstance(choices, list) and choices)):
            self._start(chunk, out)
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = _usage(chunk["usage"])
        if isinstance(chunk.get("service_tier"), str) and self._response is not None:
            self._response["service_tier"] = chunk["service_tier"]
        return out

    def _terminal(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        response = self._start(None, out)
        self._emit_calls(out)
        final = {**response, "output": self._output, "usage": self._usage}
        _finish(final, self._finish_reason)
        name = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        out.append(self._event(name, {"response": final}))
        self._ended = True
        return out

    def _failed(self, error: Any) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        response = self._start(None, out)
        message = error.get("message") if isinstance(error, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        status = 429 if kind == "rate_limit_error" or code in ("rate_limit_exceeded", "insufficient_quota") else 500
        text = message if isinstance(message, str) and message else "The upstream API failed the answer."
        rendered = parsed(error_bodies.stream_error(status, text, kind if isinstance(kind, str) else None,
                                                    ClientFormat.RESPONSES))
        data = {key: value for key, value in rendered.items() if key != "type"}
        if isinstance(code, str):
            data["code"] = code
        out.append(self._event("error", data))
        failed = {**response, "status": "failed", "output": self._output, "usage": self._usage,
                  "error": {"code": data.get("code") or "server_error", "message": text}}
        out.append(self._event("response.failed", {"response": failed}))
        self._ended = True
        return out

    def finish(self) -> list[SSEEvent]:
        if self._ended:
            return []
        return self._terminal()


class ResponsesToOpenAI(Translator):
    client = ClientFormat.RESPONSES
    upstream = ClientFormat.OPENAI

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        passed = {name: value for name, value in headers.items()
                  if name.lower() in _PASSED_HEADERS or name.lower().startswith(_PASSED_PREFIXES)}
        return Conversion(convert_request(body, target), passed)

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        return convert_response(body, target)

    def answer_target(self, body: Mapping[str, Any], target: Target) -> Target:
        return dataclasses.replace(target, tools=responses_tools.client_tools(body))

    def stream(self, target: Target) -> StreamConverter:
        return ChatToResponsesStream(target)


TRANSLATOR = ResponsesToOpenAI()
