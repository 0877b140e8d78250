"""Gemini client (Gemini CLI, the google-genai SDK) served by an OpenAI chat platform (openai, azure-openai).

Request fields (GenerateContentRequest → Chat Completions; each field is read by its JSON name or its proto
name, as Google accepts both: `systemInstruction` / `system_instruction`, …):

- `model` (in the path, or in the body): the body's `model` is `target.model`
- `systemInstruction` → one leading `system` message (its text parts joined by a blank line)
- `contents`: role `user` (or none) → `user` messages, role `model` → `assistant` messages. Parts:
  - `text` → text (a user message with only text gets a string; `thought: true` parts of model turns are
    dropped: Chat Completions takes no reasoning as input)
  - `inlineData`: `image/*` → `image_url` with a data: URL; `audio/wav` / `audio/mp3` (`audio/mpeg`) →
    `input_audio`; `application/pdf` → `file {filename, file_data: data URL}`; other types → 400
  - `fileData` with an http(s) `fileUri` and an `image/*` type → `image_url` with that URL; other file URIs
    (Files API, gs://) → 400: OpenAI cannot read them
  - `functionCall` (model turn) → an assistant `tool_calls` entry: id = the part's `functionCall.id` when
    given, else the stable `call_<content index>_<part index>` (the same history gives the same ids on every
    turn); arguments = `args` as a JSON string
  - `functionResponse` (user turn) → a `tool` message whose `tool_call_id` pairs it with its call: the
    `functionResponse.id` when it names one, else the oldest unanswered call of that function name (in
    order); content = `response` as JSON (`{"output": "x"}` alone → `x`). No matching call → 400. A turn's tool
    messages come first (OpenAI wants them right after the calls), its other parts after them as a user message
  - `thoughtSignature` on any part: dropped (only Gemini makes them; an OpenAI chat upstream has no reasoning
    token to restore, and it would refuse the field)
  - `executableCode`, `codeExecutionResult`, `videoMetadata`, other parts → 400
- `tools`: `functionDeclarations` → `{type: function, function: {name, description, parameters}}` with
  `parametersJsonSchema` as is (by reference) or `parameters` (Google's OpenAPI subset) rewritten as JSON
  Schema (type names lower-cased, `nullable` → a `null` type, `propertyOrdering` / `example` left out: they
  only order or illustrate); `googleSearch`, `codeExecution`, `urlContext` and other Google tools → 400
- `toolConfig.functionCallingConfig.mode`: AUTO → `auto`, NONE → `none`, ANY → `required`; with
  `allowedFunctionNames`: one name under ANY → `{type: function, function: {name}}`, several →
  `{type: allowed_tools, allowed_tools: {mode: required|auto, tools}}`; VALIDATED → 400
- `generationConfig`: `maxOutputTokens` → `max_completion_tokens`; `temperature`; `topP` → `top_p`;
  `candidateCount` → `n`; `stopSequences` → `stop`; `seed`; `presencePenalty` → `presence_penalty`;
  `frequencyPenalty` → `frequency_penalty`; `responseMimeType` `application/json` → `response_format`
  `json_object`, or `json_schema {name: response, schema}` with `responseJsonSchema` (as is) / `responseSchema`
  (rewritten like `parameters`), `text/plain` → nothing, others 400; `responseModalities` `["TEXT"]` consumed,
  others 400; `thinkingConfig`: `thinkingLevel` (minimal/low/medium/high) → `reasoning_effort`; a
  `thinkingBudget` of 0 → `minimal`, up to 1024 → `low`, up to 8192 → `medium`, above → `high`, -1 (dynamic)
  → nothing (the model's default); `includeThoughts` consumed (chat answers carry no thought text);
  `topK` consumed (a sampling hint OpenAI has no parameter for; `top_p` still applies). For OpenAI's
  reasoning models (`target.model` `o1…`, `o3…`, `o4…`, `gpt-5…`), which refuse sampling parameters other
  than their defaults, `temperature`, `topP`, `presencePenalty` and `frequencyPenalty` are consumed (Gemini
  CLI sends `temperature: 0`); for other models `thinkingConfig` is consumed (only reasoning models take
  `reasoning_effort`);
  `responseLogprobs` / `logprobs`: 400 (not mapped back into Gemini answers); other keys 400
- `safetySettings`: consumed: OpenAI has no per-request safety thresholds (its own moderation applies)
- `cachedContent`: 400 (a Gemini cache resource that OpenAI cannot read)
- `serviceTier`: consumed (the OpenAI account's tier applies)
- `stream`: `target.stream`, with `stream_options: {include_usage: true}` so the final usage is known
- any other field → 400 naming it

Headers: none are passed (`x-goog-api-client` and Gemini's others mean nothing to OpenAI).

Answers (chat.completion → GenerateContentResponse): one candidate per choice; `reasoning_content` (when an
OpenAI-compatible upstream gives it) → a `{text, thought: true}` part first; `content` and `refusal` → a text
part; `tool_calls` → `functionCall {id, name, args}` parts (the id lets the client pair its
`functionResponse`); `finish_reason` stop / tool_calls → STOP, length → MAX_TOKENS, content_filter →
SAFETY. `usageMetadata`: promptTokenCount = prompt_tokens, candidatesTokenCount = completion_tokens −
reasoning_tokens, thoughtsTokenCount = reasoning_tokens, cachedContentTokenCount = cached_tokens,
totalTokenCount; `modelVersion` = target.model; `responseId` = the chat id without `chatcmpl-`.

Streams (`data:` SSE events, each a GenerateContentResponse): content and reasoning deltas → text parts as
they come; tool call fragments are assembled and sent whole as `functionCall` parts in the last chunk, which
carries `finishReason` and `usageMetadata` (sent when the usage chunk, `[DONE]` or the stream's end comes
after the finish). An OpenAI in-stream `error` → Gemini's error chunk.
"""

import re
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import error_bodies
from switchboard_edge.translate.base import Conversion, StreamConverter, Target, Translator, data_event, parsed

_TOP_LEVEL = {"model": "model", "contents": "contents", "systemInstruction": "system_instruction",
              "tools": "tools", "toolConfig": "tool_config", "generationConfig": "generation_config",
              "safetySettings": "safety_settings", "cachedContent": "cached_content", "serviceTier": "service_tier"}
_SNAKE = frozenset(_TOP_LEVEL.values())
_GENERATION = {"maxOutputTokens": "max_output_tokens", "temperature": "temperature", "topP": "top_p",
               "topK": "top_k", "candidateCount": "candidate_count", "stopSequences": "stop_sequences",
               "seed": "seed", "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty",
               "responseMimeType": "response_mime_type", "responseJsonSchema": "response_json_schema",
               "responseSchema": "response_schema", "responseModalities": "response_modalities",
               "thinkingConfig": "thinking_config", "responseLogprobs": "response_logprobs",
               "logprobs": "logprobs"}
_DIRECT = {"temperature": "temperature", "topP": "top_p", "candidateCount": "n", "seed": "seed",
           "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty"}
# OpenAI's reasoning models: they refuse sampling parameters other than their defaults, and only they take
# `reasoning_effort`.
_REASONING_MODELS = re.compile(r"(o\d|gpt-5)")
_SAMPLING = frozenset({"temperature", "topP", "presencePenalty", "frequencyPenalty"})
_LEVELS = frozenset({"minimal", "low", "medium", "high"})
_AUDIO = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "function_call": "STOP", "length": "MAX_TOKENS",
           "content_filter": "SAFETY"}
_MODES = {"AUTO": "auto", "NONE": "none", "ANY": "required"}
# OpenAI error types/codes (in-stream `error` chunks) → the HTTP status they stand for.
_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "invalid_api_key": 401,
                 "permission_error": 403, "not_found_error": 404, "model_not_found": 404, "rate_limit_error": 429,
                 "rate_limit_exceeded": 429, "insufficient_quota": 429, "server_error": 500,
                 "service_unavailable": 503}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _get(mapping: Mapping[str, Any], camel: str, snake: str) -> Any:
    return mapping[camel] if camel in mapping else mapping.get(snake)


# ---------------------------------------------------------------------------------------------------------
# Request


def json_schema(schema: Any) -> Any:
    """Google's OpenAPI-subset Schema (`parameters`, `responseSchema`) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("propertyOrdering", "property_ordering", "example", "nullable"):
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "any_of"):
            out["anyOf" if key == "any_of" else key] = json_schema(value)
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _data_url(inline: Mapping[str, Any]) -> str:
    return f"data:{_get(inline, 'mimeType', 'mime_type')};base64,{inline.get('data')}"


def _media(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    inline = _get(part, "inlineData", "inline_data")
    if isinstance(inline, dict):
        mime = _get(inline, "mimeType", "mime_type")
        mime = mime if isinstance(mime, str) else ""
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": _data_url(inline)}}
        if mime in _AUDIO:
            return {"type": "input_audio", "input_audio": {"data": inline.get("data"), "format": _AUDIO[mime]}}
        if mime == "application/pdf":
            return {"type": "file", "file": {"filename": "document.pdf", "file_data": _data_url(inline)}}
        raise InvalidRequest(f"'{where}.inlineData.mimeType' {mime!r} is not supported on an OpenAI model.")
    file = _get(part, "fileData", "file_data")
    uri = _get(file, "fileUri", "file_uri") if isinstance(file, dict) else None
    mime = _get(file, "mimeType", "mime_type") if isinstance(file, dict) else None
    if isinstance(uri, str) and uri.startswith(("http://", "https://")) and (
            mime is None or (isinstance(mime, str) and mime.startswith("image/"))):
        return {"type": "image_url", "image_url": {"url": uri}}
    raise InvalidRequest(f"'{where}.fileData': only http(s) image URLs are supported on an OpenAI model (Files API "
                         "and gs:// URIs cannot be read there).")


class _Pairs:
    """Tool call ids: made for function calls in order, taken by function responses in order."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []  # (name, id) of calls not answered yet

    def call(self, call: Mapping[str, Any], content: int, part: int) -> str:
        given = call.get("id")
        call_id = given if isinstance(given, str) and given else f"call_{content}_{part}"
        self.pending.append((str(call.get("name")), call_id))
        return call_id

    def answer(self, response: Mapping[str, Any], where: str) -> str:
        given = response.get("id")
        name = response.get("name")
        for position, (pending_name, call_id) in enumerate(self.pending):
            if (isinstance(given, str) and given and call_id == given) or (
                    not (isinstance(given, str) and given) and pending_name == name):
                del self.pending[position]
                return call_id
        raise InvalidRequest(f"'{where}.functionResponse' ({name!r}) answers no earlier functionCall of the "
                             "conversation.")


def _response_text(response: Any) -> str:
    if isinstance(response, dict) and set(response) == {"output"} and isinstance(response["output"], str):
        return response["output"]
    return orjson.dumps(response if response is not None else {}).decode()


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = _get(body, "systemInstruction", "system_instruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if isinstance(system, str):
            texts = [system]
        elif isinstance(parts, list):
            texts = [part["text"] for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str)]
            if len(texts) != len(parts):
                raise InvalidRequest("'systemInstruction.parts' must hold text parts only.")
        else:
            raise InvalidRequest("'systemInstruction' must be a Content with text parts.")
        if any(texts):
            messages.append({"role": "system", "content": "\n\n".join(text for text in texts if text)})
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("'contents' must be a non-empty array.")
    pairs = _Pairs()
    for index, content in enumerate(contents):
        where = f"contents[{index}]"
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise InvalidRequest(f"'{where}.parts' must be an array.")
        role = content.get("role") or "user"
        if role == "model":
            messages.extend(_assistant(parts, where, index, pairs))
        elif role == "user":
            messages.extend(_user(parts, where, pairs))
        else:
            raise InvalidRequest(f"'{where}.role' {role!r} must be user or model.")
    if not any(message["role"] != "system" for message in messages):
        raise InvalidRequest("'contents' holds nothing to send.")
    return messages


def _assistant(parts: list[Any], where: str, index: int, pairs: _Pairs) -> list[dict[str, Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{at}' must be an object.")
        call = _get(part, "functionCall", "function_call")
        if isinstance(call, dict):
            name = call.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"'{at}.functionCall.name' must be a non-empty string.")
            args = call.get("args")
            calls.append({"id": pairs.call(call, index, number), "type": "function", "function": {
                "name": name, "arguments": orjson.dumps(args if args is not None else {}).decode()}})
        elif isinstance(part.get("text"), str):
            if not part.get("thought") and part["text"]:
                texts.append(part["text"])
        elif set(part) - {"thoughtSignature", "thought_signature", "thought"}:
            raise InvalidRequest(f"'{at}': this part ({', '.join(part)}) is not supported in a model turn on an "
                                 "OpenAI model.")
    if not texts and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _user(parts: list[Any], where: str, pairs: _Pairs) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for number, part in enumerate(parts):
        at = f"{where}.parts[{number}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{at}' must be an object.")
        response = _get(part, "functionResponse", "function_response")
        if isinstance(response, dict):
            tools.append({"role": "tool", "tool_call_id": pairs.answer(response, at),
                          "content": _response_text(response.get("response"))})
        elif isinstance(part.get("text"), str):
            if part["text"]:
                content.append({"type": "text", "text": part["text"]})
        elif any(key in part for key in ("inlineData", "inline_data", "fileData", "file_data")):
            content.append(_media(part, at))
        else:
            raise InvalidRequest(f"'{at}': this part ({', '.join(part)}) is not supported on an OpenAI model.")
    if not content:
        return tools
    if all(item["type"] == "text" for item in content):
        return [*tools, {"role": "user", "content": "".join(item["text"] for item in content)}]
    return [*tools, {"role": "user", "content": content}]


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'tools[{index}]' must be an object.")
        for key in tool:
            if key not in ("functionDeclarations", "function_declarations"):
                raise InvalidRequest(f"'tools[{index}].{key}' (a Google tool) is not available on an OpenAI model.")
        for number, declaration in enumerate(_get(tool, "functionDeclarations", "function_declarations") or ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"'tools[{index}].functionDeclarations[{number}].name' must be a string.")
            function: dict[str, Any] = {"name": name}
            if isinstance(declaration.get("description"), str):
                function["description"] = declaration["description"]
            schema = _get(declaration, "parametersJsonSchema", "parameters_json_schema")
            if schema is None and declaration.get("parameters") is not None:
                schema = json_schema(declaration["parameters"])
            if schema is not None:
                function["parameters"] = schema
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(config: Any) -> Any:
    calling = _get(config, "functionCallingConfig", "function_calling_config") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        raise InvalidRequest("'toolConfig' must hold a functionCallingConfig.")
    mode = calling.get("mode") or "AUTO"
    if not isinstance(mode, str) or mode not in _MODES:
        raise InvalidRequest(f"'toolConfig.functionCallingConfig.mode' {mode!r} is not supported on an OpenAI "
                             "model (AUTO, ANY or NONE).")
    names = _get(calling, "allowedFunctionNames", "allowed_function_names")
    if names and (not isinstance(names, list) or not all(isinstance(name, str) for name in names)):
        raise InvalidRequest("'toolConfig.functionCallingConfig.allowedFunctionNames' must be an array of names.")
    if not names or mode == "NONE":
        return _MODES[mode]
    if mode == "ANY" and len(names) == 1:
        return {"type": "function", "function": {"name": names[0]}}
    return {"type": "allowed_tools", "allowed_tools": {
        "mode": "required" if mode == "ANY" else "auto",
        "tools": [{"type": "function", "function": {"name": name}} for name in names]}}


def _effort(thinking: Any) -> str | None:
    if not isinstance(thinking, dict):
        raise InvalidRequest("'generationConfig.thinkingConfig' must be an object.")
    level = _get(thinking, "thinkingLevel", "thinking_level")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in _LEVELS:
            raise InvalidRequest(f"'generationConfig.thinkingConfig.thinkingLevel' {level!r} is not supported.")
        return level.lower()
    budget = _get(thinking, "thinkingBudget", "thinking_budget")
    if budget is None or budget == -1:
        return None
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise InvalidRequest("'generationConfig.thinkingConfig.thinkingBudget' must be -1 or a non-negative integer.")
    if budget == 0:
        return "minimal"
    return "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"


def _generation(config: Any, out: dict[str, Any], reasoning: bool) -> None:
    if not isinstance(config, dict):
        raise InvalidRequest("'generationConfig' must be an object.")
    snake = {value: key for key, value in _GENERATION.items()}
    fields: dict[str, Any] = {}
    for key, value in config.items():
        name = key if key in _GENERATION else snake.get(key)
        if name is None:
            raise InvalidRequest(f"'generationConfig.{key}' is not supported on an OpenAI model.")
        fields[name] = value
    if fields.get("responseLogprobs") or fields.get("logprobs") is not None:
        raise InvalidRequest("'generationConfig.responseLogprobs' / 'logprobs' are not supported here.")
    if fields.get("maxOutputTokens") is not None:
        out["max_completion_tokens"] = fields["maxOutputTokens"]
    for name, openai in _DIRECT.items():
        if fields.get(name) is not None and not (reasoning and name in _SAMPLING):
            out[openai] = fields[name]
    if fields.get("stopSequences"):
        out["stop"] = fields["stopSequences"]
    modalities = fields.get("responseModalities")
    if modalities and [str(m).upper() for m in modalities] != ["TEXT"]:
        raise InvalidRequest("'generationConfig.responseModalities': only TEXT is supported on an OpenAI model.")
    mime = fields.get("responseMimeType")
    schema = fields.get("responseJsonSchema")
    if schema is None and fields.get("responseSchema") is not None:
        schema = json_schema(fields["responseSchema"])
    if mime == "application/json":
        out["response_format"] = ({"type": "json_object"} if schema is None else
                                  {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}})
    elif mime not in (None, "text/plain"):
        raise InvalidRequest(f"'generationConfig.responseMimeType' {mime!r} is not supported on an OpenAI model.")
    if fields.get("thinkingConfig") is not None:
        effort = _effort(fields["thinkingConfig"])
        if effort is not None:
            if reasoning:
                out["reasoning_effort"] = effort


def _request(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    for name in body:
        if name not in _TOP_LEVEL and name not in _SNAKE:
            raise InvalidRequest(f"'{name}' is not a supported field on an OpenAI model.")
    if _get(body, "cachedContent", "cached_content"):
        raise InvalidRequest("'cachedContent' names a Gemini cache that an OpenAI model cannot read; send the "
                             "content itself.")
    out: dict[str, Any] = {"model": target.model, "messages": _messages(body)}
    tools = _get(body, "tools", "tools")
    if tools:
        converted = _tools(tools)
        if converted:
            out["tools"] = converted
    config = _get(body, "toolConfig", "tool_config")
    if config is not None and "tools" in out:
        out["tool_choice"] = _tool_choice(config)
    generation = _get(body, "generationConfig", "generation_config")
    if generation is not None:
        _generation(generation, out, _REASONING_MODELS.match(target.model) is not None)
    out["stream"] = target.stream
    if target.stream:
        out["stream_options"] = {"include_usage": True}
    return out


# ---------------------------------------------------------------------------------------------------------
# Answers


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage(usage: Any) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    prompt = _number(usage.get("prompt_tokens"))
    completion = _number(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _number(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = _number(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    out: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": max(0, completion - reasoning),
                           "totalTokenCount": _number(usage.get("total_tokens")) or prompt + completion}
    if cached:
        out["cachedContentTokenCount"] = cached
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if reasoning:
        out["thoughtsTokenCount"] = reasoning
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        args = orjson.loads(raw) if isinstance(raw, str) and raw else {}
    except orjson.JSONDecodeError:
        return {"arguments": raw}
    return args if isinstance(args, dict) else {"arguments": args}


def _call_part(call: Mapping[str, Any]) -> dict[str, Any]:
    function = _object(call.get("function"))
    out: dict[str, Any] = {"name": function.get("name") or "", "args": _arguments(function.get("arguments"))}
    if isinstance(call.get("id"), str) and call["id"]:
        out = {"id": call["id"], **out}
    return {"functionCall": out}


def _response_id(body: Mapping[str, Any]) -> str:
    given = body.get("id")
    return given.removeprefix("chatcmpl-") if isinstance(given, str) else ""


def _response(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    candidates = []
    for position, choice in enumerate(body.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        message = _object(choice.get("message"))
        parts: list[dict[str, Any]] = []
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append({"text": reasoning, "thought": True})
        for field in ("content", "refusal"):
            if isinstance(message.get(field), str) and message[field]:
                parts.append({"text": message[field]})
        parts += [_call_part(call) for call in message.get("tool_calls") or () if isinstance(call, dict)]
        index = choice.get("index")
        candidates.append({"content": {"parts": parts or [{"text": ""}], "role": "model"},
                           "finishReason": _FINISH.get(str(choice.get("finish_reason")), "STOP"),
                           "index": index if isinstance(index, int) else position})
    return {"candidates": candidates, "usageMetadata": _usage(body.get("usage")), "modelVersion": target.model,
            "responseId": _response_id(body)}


class ChatToGeminiStream(StreamConverter):
    """chat.completion.chunk events → Gemini `data:` chunks; the last one carries finishReason and usage."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._id = ""
        self._calls: dict[int, dict[int, dict[str, Any]]] = {}  # choice → tool call index → call
        self._finished: dict[int, str] = {}
        self._usage: Any = None
        self._done = False

    def _chunk(self, candidates: list[dict[str, Any]], usage: Any = None) -> SSEEvent:
        chunk: dict[str, Any] = {"candidates": candidates}
        if usage is not None:
            chunk["usageMetadata"] = _usage(usage)
        chunk["modelVersion"] = self._target.model
        chunk["responseId"] = self._id
        return data_event(chunk)

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._done:
            return []
        chunk = parsed(event)
        if chunk is None:
            return self._end() if event.data.strip() == b"[DONE]" else []
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            self._done = True
            error = chunk["error"]
            kind = error.get("type") or error.get("code")
            kind = kind if isinstance(kind, str) else None
            status = _ERROR_STATUS.get(kind or "", 500)
            message = error.get("message") if isinstance(error.get("message"), str) else ""
            return [error_bodies.stream_error(status, message or "The upstream API failed.", kind,
                                              ClientFormat.GEMINI)]
        if not self._id:
            self._id = _response_id(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        out: list[SSEEvent] = []
        for position, choice in enumerate(chunk.get("choices") or ()):
            if not isinstance(choice, dict):
                continue
            index = _int(choice.get("index"), position)
            delta = _object(choice.get("delta"))
            parts: list[dict[str, Any]] = []
            if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
                parts.append({"text": delta["reasoning_content"], "thought": True})
            for field in ("content", "refusal"):
                if isinstance(delta.get(field), str) and delta[field]:
                    parts.append({"text": delta[field]})
            for call in delta.get("tool_calls") or ():
                self._collect(index, call)
            if parts:
                out.append(self._chunk([{"content": {"parts": parts, "role": "model"}, "index": index}]))
            if choice.get("finish_reason"):
                self._finished[index] = _FINISH.get(str(choice["finish_reason"]), "STOP")
        if self._usage is not None and self._finished:
            out += self._end()
        return out

    def _collect(self, choice: int, fragment: Any) -> None:
        if not isinstance(fragment, dict):
            return
        calls = self._calls.setdefault(choice, {})
        position = _int(fragment.get("index"), len(calls))
        call = calls.setdefault(position, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        if isinstance(fragment.get("id"), str):
            call["id"] = fragment["id"]
        function = _object(fragment.get("function"))
        if isinstance(function.get("name"), str):
            call["function"]["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]

    def _end(self) -> list[SSEEvent]:
        self._done = True
        indexes = sorted(set(self._finished) | set(self._calls)) or [0]
        candidates = []
        for index in indexes:
            calls = self._calls.get(index, {})
            parts = [_call_part(calls[number]) for number in sorted(calls)] or [{"text": ""}]
            candidates.append({"content": {"parts": parts, "role": "model"},
                               "finishReason": self._finished.get(index, "STOP"), "index": index})
        return [self._chunk(candidates, self._usage if self._usage is not None else {})]

    def finish(self) -> list[SSEEvent]:
        return [] if self._done else self._end()


class GeminiToOpenAI(Translator):
    client = ClientFormat.GEMINI
    upstream = ClientFormat.OPENAI

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        return Conversion(_request(body, target), {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        return _response(body, target)

    def stream(self, target: Target) -> StreamConverter:
        return ChatToGeminiStream(target)


TRANSLATOR = GeminiToOpenAI()
