"""Anthropic Messages client (Claude Code, the anthropic SDK) served by the gemini platform. The platform picks
the URL (`:generateContent`, or `:streamGenerateContent?alt=sse` for a stream); this module makes the
GenerateContentRequest body.

Request fields (Anthropic Messages → generateContent):

- `model`: not in the body (Gemini names the model in the URL; the platform maps `target.model` there)
- `system` (string or text blocks) → `systemInstruction.parts`; a `system` message inside `messages` (Claude
  Code sends one) joins it too (Gemini has one system instruction)
- `messages`: `user` → role `user`, `assistant` → role `model`; neighbours of one role merge into one entry (a
  turn's function responses travel together); empty text blocks and messages left with nothing are left out.
  Blocks:
  - `text` → a text part (`citations` consumed: Gemini takes plain text)
  - `image` base64 → `inlineData {mimeType, data}` (the data by reference); `url` → `fileData {mimeType,
    fileUri}` when the URL's extension names the image type, else 400 (Gemini needs a URL's MIME type)
  - `document` base64 (PDF) → `inlineData`, `text` source → a text part, `url` → `fileData application/pdf`
  - `tool_use` → `functionCall {name, args: input}`
  - `tool_result` → `functionResponse {name, response: {output: text}}` (`{error: text}` when `is_error`), the
    name found from the `tool_use` with that id (unknown id: 400); images inside it → `inlineData` parts
    right after it; `tool_reference` blocks (a tool search's result) → a line naming the tool, which is
    declared anyway (see `tools`)
  - `thinking`: its text is not sent back (Gemini does not take thoughts as input). Its `signature`, when
    sealed by this platform (`seal.opened`), is the Gemini `thoughtSignature` and goes back byte-exact onto
    the part made from the block after it in the message (the part it came with, see Answers), or onto the
    block before it when it is last; any other signature (another platform's, or Anthropic's own) is dropped.
    On Gemini 3 and later (`target.model` `gemini-3…`), which refuse a model turn whose first function call
    has no signature, such a call gets Google's documented `skip_thought_signature_validator` token
  - `redacted_thinking`: dropped (Anthropic's encrypted thinking means nothing to Gemini)
  - `cache_control` on any block: consumed (Gemini caches repeated prefixes implicitly)
  - other block types (server tool blocks, search results, …) → 400 naming them
- `max_tokens` → `generationConfig.maxOutputTokens` (above 65,536, Gemini's largest output limit, lowered to
  it: Claude Code asks up to 128,000 and Google refuses more than the model's limit); `temperature` →
  `temperature`, `top_p` → `topP`, `top_k` → `topK`, `stop_sequences` → `stopSequences`
- `thinking`: `enabled` → `thinkingConfig {thinkingBudget: budget_tokens, includeThoughts: true}` (a budget
  above 24,576, the largest every Gemini thinking model takes, lowered to it); `adaptive` → `thinkingBudget`
  from `output_config.effort` (low 1024, medium 8192, high and max 24576), else `-1`
  (Gemini's dynamic thinking), with `includeThoughts: true`; `disabled` or absent: no `thinkingConfig` (the
  model's default; several Gemini models cannot turn thinking off, and no thoughts are included)
- `output_config`: `effort` (see `thinking`; without thinking consumed: it tunes Claude's effort), `format`
  `json_schema` → `responseMimeType: application/json` + `responseJsonSchema` (the schema by reference);
  other keys 400. `output_format` (the older beta spelling) is read the same way
- `tools`: client tools → one `tools: [{functionDeclarations: [{name, description, parametersJsonSchema:
  input_schema}]}]` (`parametersJsonSchema` takes full JSON Schema, so the schema goes untouched, by
  reference); `cache_control`, `defer_loading`, `input_examples`, `eager_input_streaming`, `strict`
  consumed (every tool is sent; Gemini caches implicitly and follows the schema); tool search tools
  (`tool_search_tool_*`) consumed (deferred tools are sent like the others, so there is nothing to search);
  other server tools (`web_search_*`, `bash_*`, `text_editor_*`, `computer_*`, …) → 400 naming the type
- `tool_choice` → `toolConfig.functionCallingConfig`: `auto` → AUTO, `any` → ANY, `none` → NONE, `{type:
  tool, name}` → ANY + `allowedFunctionNames: [name]`; `disable_parallel_tool_use` consumed (Gemini has no
  switch; several calls become several `tool_use` blocks)
- `metadata.user_id`: consumed (Gemini has no end-user field; the gateway reads the session from it itself)
- `service_tier` (`auto`, `standard_only`): consumed (the account's Gemini tier applies)
- `context_management`: consumed: it selects Anthropic's server-side context editing, which Gemini does not
  offer; the whole conversation is sent as the client has it
- `mcp_servers`, `container` (non-empty) → 400: Anthropic-hosted connectors and containers are not available
- `stream`: the platform picks the streaming URL from `target.stream`
- any other field → 400 naming it

Headers: `anthropic-version` and `anthropic-beta` are consumed (they select Anthropic API behaviours, e.g.
interleaved thinking or context management, which mean nothing to Gemini); none are passed.

Answers (candidate 0 of a GenerateContentResponse → an Anthropic message, id `msg_<responseId>`): thought parts
(`thought: true`) → a `thinking` block (consecutive thoughts join); a part carrying `thoughtSignature` gets a
`thinking` block right before its own block whose `signature` is the sealed token (the thoughts before it,
or an empty thinking block when there were none, which Claude Code accepts) — so the signature goes back onto
that same part; text → `text` blocks; `functionCall` → `tool_use` (id `toolu_<functionCall.id>` or
`toolu_<responseId>_<n>`, input = args). `finishReason`: STOP → `end_turn` (`tool_use` when calls are
present; Gemini does not say which stop sequence matched), MAX_TOKENS → `max_tokens`, SAFETY / RECITATION /
BLOCKLIST / PROHIBITED_CONTENT / SPII / IMAGE_SAFETY → `refusal`, others → `end_turn`; a prompt blocked by
`promptFeedback.blockReason` → no content and `refusal`. Usage: `input_tokens` = promptTokenCount −
cachedContentTokenCount, `cache_read_input_tokens` = cachedContentTokenCount, `cache_creation_input_tokens`
0 (implicit caching bills no writes), `output_tokens` = candidatesTokenCount + thoughtsTokenCount.

Streams (Claude Code's rules): one `message_start` on the first chunk (input tokens from its `usageMetadata`
when present, else `target.input_estimate`; `output_tokens` 1); blocks open one at a time, indexed in order:
thoughts stream as `thinking_delta`s into one open thinking block, which the next signed part closes with a
`signature_delta` (sealed); text streams as `text_delta`s; each `functionCall` (Gemini sends it whole) is a
`tool_use` block started with `input: {}` whose arguments follow as one `input_json_delta`. The chunk with
`finishReason` closes the open block and sends `message_delta` (stop reason, usage) and `message_stop`. A chunk
holding `error` → Anthropic's `error` event. `finish()` closes a stream whose end was not sent.
"""

import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import seal
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator, named_event, parsed
from switchboard_edge.translate.openai_to_gemini import (
    MAX_OUTPUT_TOKENS,
    MAX_THINKING_BUDGET,
    blocked,
    candidates_of,
    count,
    finish_filtered,
    gemini_error,
    parts_of,
    sign_calls,
)

_KNOWN = frozenset({"model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream",
                    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
                    "container", "mcp_servers", "context_management", "output_config", "output_format"})
_EFFORT_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576, "max": MAX_THINKING_BUDGET,
                   "xhigh": MAX_THINKING_BUDGET}
_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
                "gif": "image/gif", "heic": "image/heic", "heif": "image/heif"}
_SERVER_TOOL_PREFIXES = ("tool_search_tool_",)


# ---------------------------------------------------------------------------------------------------------
# Request


def _url_type(url: Any, where: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidRequest(f"'{where}.source.url' must be an http(s) URL.")
    extension = url.split("?", 1)[0].rsplit("/", 1)[-1].rpartition(".")[2].lower()
    mime = _IMAGE_TYPES.get(extension)
    if mime is None:
        raise InvalidRequest(f"'{where}.source.url': Gemini needs an image URL's type; this URL does not end in "
                             ".png, .jpg, .jpeg, .webp, .gif, .heic or .heif. Send the image as base64.")
    return mime


def _media(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if not isinstance(source, dict):
        raise InvalidRequest(f"'{where}.source' must be an object.")
    if kind == "base64":
        media_type = source.get("media_type")
        if block.get("type") == "document" and media_type is None:
            media_type = "application/pdf"
        return {"inlineData": {"mimeType": media_type, "data": source.get("data")}}
    if kind == "url":
        if block.get("type") == "document":
            return {"fileData": {"mimeType": "application/pdf", "fileUri": source.get("url")}}
        return {"fileData": {"mimeType": _url_type(source.get("url"), where), "fileUri": source.get("url")}}
    if kind == "text" and block.get("type") == "document":
        return {"text": source.get("data") or ""}
    raise InvalidRequest(f"'{where}.source.type' {kind!r} is not supported on a Gemini model.")


def _result(block: Mapping[str, Any], where: str, names: Mapping[str, str]) -> list[dict[str, Any]]:
    tool_id = block.get("tool_use_id")
    name = names.get(tool_id) if isinstance(tool_id, str) else None
    if name is None:
        raise InvalidRequest(f"'{where}.tool_use_id' {tool_id!r} does not match a tool_use block of an earlier "
                             "assistant message (Gemini needs the function's name).")
    content = block.get("content")
    texts: list[str] = []
    extra: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for index, item in enumerate(content):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text" and isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif kind == "tool_reference" and isinstance(item.get("tool_name"), str):
                texts.append(f"Tool {item['tool_name']} is available.")
            elif kind in ("image", "document") and isinstance(item, dict):
                extra.append(_media(item, f"{where}.content[{index}]"))
            else:
                raise InvalidRequest(f"'{where}.content[{index}]': block type {kind!r} is not supported in a "
                                     "tool result on a Gemini model.")
    elif content is not None:
        raise InvalidRequest(f"'{where}.content' must be a string or an array of blocks.")
    key = "error" if block.get("is_error") else "output"
    return [{"functionResponse": {"name": name, "response": {key: "\n".join(texts)}}}, *extra]


def _blocks(content: Any, where: str, role: str, names: dict[str, str], platform: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"'{where}.content' must be a string or an array of blocks.")
    parts: list[dict[str, Any]] = []
    signature: str | None = None  # a signature waiting for the part of the block after its thinking block
    for index, block in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict):
            raise InvalidRequest(f"'{at}' must be a content block object.")
        made: list[dict[str, Any]]
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"'{at}.text' must be a string.")
            made = [{"text": text}] if text else []
        elif kind in ("image", "document"):
            made = [_media(block, at)]
        elif kind == "tool_use" and role == "model":
            name, tool_id, args = block.get("name"), block.get("id"), block.get("input")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"'{at}.name' must be a non-empty string.")
            if isinstance(tool_id, str):
                names[tool_id] = name
            made = [{"functionCall": {"name": name, "args": args if isinstance(args, dict) else {}}}]
        elif kind == "tool_result" and role == "user":
            made = _result(block, at, names)
        elif kind == "thinking" and role == "model":
            value = block.get("signature")
            opened = seal.opened(value, platform) if isinstance(value, str) else None
            if opened is not None:
                signature = opened
            continue
        elif kind == "redacted_thinking" and role == "model":
            continue
        else:
            raise InvalidRequest(f"'{at}': block type {kind!r} is not supported in a {role} turn on a Gemini "
                                 "model.")
        if made and signature is not None:
            made[0] = {**made[0], "thoughtSignature": signature}
            signature = None
        parts.extend(made)
    if signature is not None and parts and "thoughtSignature" not in parts[-1]:
        parts[-1] = {**parts[-1], "thoughtSignature": signature}
    return parts


def _system_texts(system: Any, where: str) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"text": system}] if system else []
    if not isinstance(system, list):
        raise InvalidRequest(f"'{where}' must be a string or an array of text blocks.")
    out = []
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise InvalidRequest(f"'{where}[{index}]' must be a text block.")
        if block["text"]:
            out.append({"text": block["text"]})
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.")
    declarations = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'tools[{index}]' must be an object.")
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith(_SERVER_TOOL_PREFIXES):
            continue
        if kind not in (None, "custom"):
            raise InvalidRequest(f"'tools[{index}]': tool type {kind!r} (an Anthropic server tool) is not "
                                 "available on a Gemini model.")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'tools[{index}].name' must be a non-empty string.")
        declaration: dict[str, Any] = {"name": name}
        if isinstance(tool.get("description"), str):
            declaration["description"] = tool["description"]
        if tool.get("input_schema") is not None:
            declaration["parametersJsonSchema"] = tool["input_schema"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_choice(choice: Any) -> dict[str, Any]:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "any", "none"):
        return {"mode": {"auto": "AUTO", "any": "ANY", "none": "NONE"}[kind]}
    if kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}
    raise InvalidRequest("'tool_choice' must be {type: auto | any | none} or {type: tool, name}.")


def _generation(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if body.get("max_tokens") is not None:
        limit = body["max_tokens"]
        config["maxOutputTokens"] = min(limit, MAX_OUTPUT_TOKENS) if isinstance(limit, int) else limit
    for name, gemini in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if body.get(name) is not None:
            config[gemini] = body[name]
    stops = body.get("stop_sequences")
    if stops:
        config["stopSequences"] = stops
    output = body.get("output_config")
    if output is not None and not isinstance(output, dict):
        raise InvalidRequest("'output_config' must be an object.")
    output = output or {}
    for key in output:
        if key not in ("effort", "format"):
            raise InvalidRequest(f"'output_config.{key}' is not supported on a Gemini model.")
    effort = output.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in _EFFORT_BUDGETS):
        raise InvalidRequest(f"'output_config.effort' {effort!r} is not one of low, medium, high, max.")
    output_format = output.get("format", body.get("output_format"))
    if output_format is not None:
        kind = output_format.get("type") if isinstance(output_format, dict) else None
        if kind != "json_schema" or not isinstance(output_format, dict):
            raise InvalidRequest(f"'output_config.format.type' {kind!r} is not supported; use json_schema.")
        config["responseMimeType"] = "application/json"
        if output_format.get("schema") is not None:
            config["responseJsonSchema"] = output_format["schema"]
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled" and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise InvalidRequest("'thinking.budget_tokens' must be an integer.")
        config["thinkingConfig"] = {"thinkingBudget": min(budget, MAX_THINKING_BUDGET), "includeThoughts": True}
    elif kind == "adaptive":
        budget = _EFFORT_BUDGETS[effort] if isinstance(effort, str) else -1
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    elif thinking is not None and kind != "disabled":
        raise InvalidRequest(f"'thinking.type' {kind!r} is not one of enabled, adaptive, disabled.")
    return config


def _request(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    for name in body:
        if name not in _KNOWN:
            raise InvalidRequest(f"'{name}' is not a supported parameter on a Gemini model.")
    if body.get("mcp_servers"):
        raise InvalidRequest("'mcp_servers' (Anthropic-hosted MCP connectors) is not available on a Gemini model.")
    if body.get("container"):
        raise InvalidRequest("'container' (Anthropic code execution containers) is not available on a Gemini model.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.")
    system = _system_texts(body.get("system"), "system")
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            system.extend(_system_texts(message.get("content"), f"{where}.content"))
            continue
        if role not in ("user", "assistant") or not isinstance(message, dict):
            raise InvalidRequest(f"'{where}.role' must be user or assistant.")
        gemini_role = "user" if role == "user" else "model"
        parts = _blocks(message.get("content"), where, gemini_role, names, target.platform)
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise InvalidRequest("'messages' holds no content to send.")
    sign_calls(contents, target.model)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    if body.get("tools"):
        tools = _tools(body["tools"])
        if tools:
            out["tools"] = tools
    choice = body.get("tool_choice")
    if choice is not None:
        config = _tool_choice(choice)
        if "tools" in out or config["mode"] == "NONE":
            out["toolConfig"] = {"functionCallingConfig": config}
        elif config["mode"] == "ANY":
            raise InvalidRequest("'tool_choice' asks for a tool call but 'tools' declares none.")
    generation = _generation(body)
    if generation:
        out["generationConfig"] = generation
    return out


# ---------------------------------------------------------------------------------------------------------
# Answers


def _usage(metadata: Any) -> dict[str, int]:
    metadata = metadata if isinstance(metadata, dict) else {}
    cached = count(metadata, "cachedContentTokenCount")
    prompt = count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount")
    return {"input_tokens": max(0, prompt - cached), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": count(metadata, "candidatesTokenCount") + count(metadata, "thoughtsTokenCount")}


def _stop_reason(reason: Any, calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if isinstance(reason, str) and finish_filtered(reason):
        return "refusal"
    return "tool_use" if calls else "end_turn"


def _base_id(body: Mapping[str, Any]) -> str:
    given = body.get("responseId")
    return given if isinstance(given, str) and given else secrets.token_hex(12)


def _tool_id(call: Mapping[str, Any], base: str, number: int) -> str:
    given = call.get("id")
    return f"toolu_{given}" if isinstance(given, str) and given else f"toolu_{base}_{number}"


def _signature(part: Mapping[str, Any], platform: str) -> str | None:
    value = part.get("thoughtSignature")
    return seal.sealed(platform, value) if isinstance(value, str) and value else None


def _response(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    base = _base_id(body)
    content: list[dict[str, Any]] = []
    calls = 0
    candidates = candidates_of(body)
    candidate = candidates[0] if candidates else {}
    for part in parts_of(candidate):
        signature = _signature(part, target.platform)
        if part.get("thought"):
            text = part.get("text") if isinstance(part.get("text"), str) else ""
            if content and content[-1]["type"] == "thinking" and not content[-1]["signature"]:
                content[-1]["thinking"] += text
            else:
                content.append({"type": "thinking", "thinking": text, "signature": ""})
            if signature:
                content[-1]["signature"] = signature
            continue
        if signature:
            if content and content[-1]["type"] == "thinking" and not content[-1]["signature"]:
                content[-1]["signature"] = signature
            else:
                content.append({"type": "thinking", "thinking": "", "signature": signature})
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            args = call.get("args")
            content.append({"type": "tool_use", "id": _tool_id(call, base, calls), "name": call.get("name") or "",
                            "input": args if isinstance(args, dict) else {}})
            calls += 1
        elif isinstance(part.get("text"), str) and part["text"]:
            if content and content[-1]["type"] == "text" and not signature:
                content[-1]["text"] += part["text"]
            else:
                content.append({"type": "text", "text": part["text"]})
    reason = "refusal" if blocked(body) else _stop_reason(candidate.get("finishReason"), calls > 0)
    return {"id": f"msg_{base}", "type": "message", "role": "assistant", "model": target.model,
            "content": content, "stop_reason": reason, "stop_sequence": None,
            "usage": _usage(body.get("usageMetadata"))}


class GeminiToAnthropicStream(StreamConverter):
    """Gemini SSE chunks → Anthropic stream events, one block open at a time."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._base = ""
        self._started = False
        self._done = False
        self._index = -1
        self._open: str | None = None
        self._calls = 0
        self._usage: Any = None

    def _start_message(self, chunk: Mapping[str, Any], out: list[SSEEvent]) -> None:
        self._started = True
        self._base = _base_id(chunk)
        metadata = chunk.get("usageMetadata")
        usage = _usage(metadata)
        if not isinstance(metadata, dict) or not count(metadata, "promptTokenCount"):
            usage["input_tokens"] = self._target.input_estimate
        if usage["input_tokens"] <= 0 and not usage["cache_read_input_tokens"]:
            usage["input_tokens"] = max(1, self._target.input_estimate)
        usage["output_tokens"] = 1
        out.append(named_event("message_start", {"type": "message_start", "message": {
            "id": f"msg_{self._base}", "type": "message", "role": "assistant", "model": self._target.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}))

    def _close(self, out: list[SSEEvent]) -> None:
        if self._open is not None:
            out.append(named_event("content_block_stop", {"type": "content_block_stop", "index": self._index}))
            self._open = None

    def _open_block(self, block: dict[str, Any], out: list[SSEEvent]) -> None:
        self._close(out)
        self._index += 1
        self._open = block["type"]
        out.append(named_event("content_block_start",
                               {"type": "content_block_start", "index": self._index, "content_block": block}))

    def _delta(self, delta: dict[str, Any], out: list[SSEEvent]) -> None:
        out.append(named_event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                       "delta": delta}))

    def _sign(self, signature: str, out: list[SSEEvent]) -> None:
        """The signature onto the open thinking block (or an empty one of its own), which it closes."""
        if self._open != "thinking":
            self._open_block({"type": "thinking", "thinking": "", "signature": ""}, out)
        self._delta({"type": "signature_delta", "signature": signature}, out)
        self._close(out)

    def _part(self, part: Mapping[str, Any], out: list[SSEEvent]) -> None:
        signature = _signature(part, self._target.platform)
        text = part.get("text") if isinstance(part.get("text"), str) else None
        if part.get("thought"):
            if text:
                if self._open != "thinking":
                    self._open_block({"type": "thinking", "thinking": "", "signature": ""}, out)
                self._delta({"type": "thinking_delta", "thinking": text}, out)
            if signature:
                self._sign(signature, out)
            return
        if signature:
            self._sign(signature, out)
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            args = call.get("args")
            self._open_block({"type": "tool_use", "id": _tool_id(call, self._base, self._calls),
                              "name": call.get("name") or "", "input": {}}, out)
            self._calls += 1
            arguments = orjson.dumps(args if isinstance(args, dict) else {}).decode()
            self._delta({"type": "input_json_delta", "partial_json": arguments}, out)
            self._close(out)
        elif text:
            if self._open != "text":
                self._open_block({"type": "text", "text": ""}, out)
            self._delta({"type": "text_delta", "text": text}, out)

    def _end(self, reason: str, out: list[SSEEvent]) -> None:
        self._close(out)
        self._done = True
        out.append(named_event("message_delta", {"type": "message_delta",
                                                 "delta": {"stop_reason": reason, "stop_sequence": None},
                                                 "usage": _usage(self._usage)}))
        out.append(named_event("message_stop", {"type": "message_stop"}))

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._done:
            return []
        chunk = parsed(event)
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            self._done = True
            return [gemini_error(chunk, ClientFormat.ANTHROPIC)]
        out: list[SSEEvent] = []
        if not self._started:
            self._start_message(chunk, out)
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        candidates = candidates_of(chunk)
        if not candidates:
            if blocked(chunk):
                self._end("refusal", out)
            return out
        candidate = candidates[0]
        for part in parts_of(candidate):
            self._part(part, out)
        reason = candidate.get("finishReason")
        if reason:
            self._end(_stop_reason(reason, self._calls > 0), out)
        return out

    def finish(self) -> list[SSEEvent]:
        if self._done:
            return []
        out: list[SSEEvent] = []
        if not self._started:
            self._start_message({}, out)
        self._end(_stop_reason("STOP", self._calls > 0), out)
        return out


class AnthropicToGemini(Translator):
    client = ClientFormat.ANTHROPIC
    upstream = ClientFormat.GEMINI

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        return Conversion(_request(body, target), {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        return _response(body, target)

    def stream(self, target: Target) -> StreamConverter:
        return GeminiToAnthropicStream(target)


TRANSLATOR = AnthropicToGemini()
