"""OpenAI Chat Completions client (the openai SDK's `chat.completions`, OpenAI-compatible tools) served by the
gemini platform. The platform picks the URL (`:generateContent`, or `:streamGenerateContent?alt=sse` for a
stream); this module makes the GenerateContentRequest body.

Request fields (Chat Completions → generateContent):

- `model`: not in the body (Gemini names the model in the URL; the platform maps `target.model` there)
- `messages`: see the message table below; neighbours of one role merge into one `contents` entry (a turn's
  function responses must travel together); a message with nothing to send is left out
- `max_completion_tokens`, `max_tokens`: `generationConfig.maxOutputTokens` (the smaller when both are given;
  above 65,536, Gemini's largest output limit, lowered to it: Google refuses larger values)
- `temperature` → `temperature`, `top_p` → `topP`, `seed` → `seed`, `presence_penalty` → `presencePenalty`,
  `frequency_penalty` → `frequencyPenalty`, `n` → `candidateCount` (each candidate becomes a choice),
  `stop` (string or list) → `stopSequences`
- `response_format`: `text` nothing to do; `json_object` → `responseMimeType: application/json`;
  `json_schema` → `responseMimeType: application/json` + `responseJsonSchema` (the client's schema by
  reference: `responseJsonSchema` takes JSON Schema as written, unlike the OpenAPI-subset `responseSchema`)
- `reasoning_effort` → `generationConfig.thinkingConfig`: `none` → `thinkingBudget: 0`; `minimal` 512,
  `low` 1024, `medium` 8192, `high` and `xhigh` 24576 (the largest budget every Gemini thinking model
  takes) tokens as `thinkingBudget` (accepted by Gemini 2.5
  and, for compatibility, by Gemini 3, where `thinkingLevel` is not accepted by 2.5) with
  `includeThoughts: true` so the thoughts come back as `reasoning_content`
- `tools` `function` → one `tools: [{functionDeclarations: [{name, description, parametersJsonSchema}]}]`:
  `parametersJsonSchema` takes a full JSON Schema (`additionalProperties`, `$schema`, `$defs`, …), where
  `parameters` (OpenAPI subset) would refuse them, so the client's schema goes by reference, untouched;
  `function.strict` consumed (Gemini follows the schema); other tool types: 400 naming the type
- `tool_choice`: `auto` → `AUTO`, `none` → `NONE`, `required` → `ANY`, `{type: function, function: {name}}` →
  `ANY` + `allowedFunctionNames: [name]`, `allowed_tools` with mode `required` → `ANY` + the names (mode
  `auto` 400: Gemini restricts names only in `ANY` mode) — all under `toolConfig.functionCallingConfig`
- `parallel_tool_calls`: consumed: Gemini has no switch for it (it may answer with several calls; each
  becomes a tool call)
- `stream`: the platform picks the streaming URL from `target.stream`; `stream_options.include_usage`: the
  answer's stream ends with the usage chunk (`target.include_usage`)
- `logprobs: true`, `top_logprobs`: 400 (not mapped back into chat answers); `logprobs: false` consumed
- `logit_bias` (non-empty): 400 (OpenAI token ids mean nothing to Gemini's tokenizer)
- `modalities`: `["text"]` consumed, with `audio` 400; `audio`: 400 (the answer is text only here)
- `service_tier`: `auto` / `default` consumed (Gemini's own tier is the account's); others 400
- `user`, `safety_identifier`, `store`, `metadata`, `prediction`, `prompt_cache_key`,
  `prompt_cache_retention`, `verbosity`: consumed: identification, OpenAI-side storage, caching hints
  (Gemini caches implicitly), speed hints and a length hint, none of which change a Gemini answer
- `functions`, `function_call` (deprecated): 400 asking for `tools` / `tool_choice`
- `web_search_options`: 400 (OpenAI's built-in search)
- vendor extensions: `top_k` → `topK`
- anything else: 400 naming the field

Messages:

- `system` / `developer`: text → `systemInstruction.parts` in order (one in the middle of the conversation
  joins it too: Gemini has one system instruction)
- `user`: string → a text part; parts: `text` → text; `image_url` with a `data:` URL → `inlineData
  {mimeType, data}` (the base64 by reference); an http(s) URL → `fileData {mimeType, fileUri}` when its
  extension names the image type (png, jpeg/jpg, webp, gif, heic, heif: Gemini needs the MIME type of a URL
  it fetches), else 400 asking for a data: URL; `detail` consumed; `file` with a `file_data` data URL →
  `inlineData`; `input_audio {data, format}` → `inlineData` (`audio/wav` or `audio/mp3`); `file_id` and other
  parts: 400 naming the part
- `assistant` (→ role `model`): `content` (string, `text` / `refusal` parts) and `refusal` → text parts;
  `tool_calls` → `functionCall {name, args}` parts (`arguments` parsed; not a JSON object → 400); a tool
  call's `extra_content.google.thought_signature` (this module's answers carry it, as Google's own OpenAI
  endpoint does) → the part's `thoughtSignature` when it is sealed by this platform, dropped otherwise; on
  Gemini 3 and later (`target.model` `gemini-3…`), which refuse a model turn whose first function call has
  no signature, such a call gets Google's documented `skip_thought_signature_validator` token instead;
  `reasoning_content` dropped (Gemini does not take its thoughts back as input); `audio` → 400
- `tool`: a `functionResponse {name, response: {output: content}}` part, the name found from the earlier
  assistant tool call with that `tool_call_id` (unknown id: 400)
- `function` role: 400 (deprecated; use `tool`)
- `name` on any message: consumed: Gemini has no participant names

Headers: none are passed (Gemini's own client headers are not in an OpenAI client's request).

Answers (GenerateContentResponse → `chat.completion`): id `chatcmpl-<responseId>`; one choice per candidate;
text parts joined into `content`; thought parts (`thought: true`) joined into `reasoning_content`;
`functionCall` parts → `tool_calls` (id `call_<functionCall.id>` or `call_<responseId>_<n>`, arguments as a
JSON string; the part's `thoughtSignature` sealed for the platform in `extra_content.google.
thought_signature`). `finishReason`: STOP → `stop` (`tool_calls` when calls are present), MAX_TOKENS →
`length`, SAFETY / RECITATION / BLOCKLIST / PROHIBITED_CONTENT / SPII / IMAGE_SAFETY → `content_filter`,
others → `stop`. A `promptFeedback.blockReason` with no candidates: one empty `content_filter` choice. Usage:
`prompt_tokens` = promptTokenCount (cached included), `prompt_tokens_details.cached_tokens` =
cachedContentTokenCount, `completion_tokens` = candidatesTokenCount + thoughtsTokenCount,
`completion_tokens_details.reasoning_tokens` = thoughtsTokenCount.

Streams: each Gemini chunk → chat.completion.chunks: the first one of a choice carries `role: assistant`;
text → `content`, thoughts → `reasoning_content`, each `functionCall` (Gemini sends it whole) → one
`tool_calls` delta with index, id, name and all its arguments; a candidate's `finishReason` → its
`finish_reason` chunk; when every choice has finished: the usage chunk (empty `choices`) if asked, then
`[DONE]`. A chunk holding `error` → OpenAI's stream error. `finish()` closes a stream whose end was not sent.
"""

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from switchboard_edge.errors import ClientFormat, InvalidRequest
from switchboard_edge.sse import SSEEvent
from switchboard_edge.translate import error_bodies, seal
from switchboard_edge.translate.base import (
    OPENAI_DONE,
    Conversion,
    StreamConverter,
    Target,
    Translator,
    data_event,
    parsed,
)

_CONSUMED = frozenset({"model", "messages", "stream", "stream_options", "parallel_tool_calls", "user",
                       "safety_identifier", "store", "metadata", "prediction", "prompt_cache_key",
                       "prompt_cache_retention", "verbosity"})
_HANDLED = frozenset({"max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "presence_penalty",
                      "frequency_penalty", "n", "stop", "response_format", "reasoning_effort", "tools",
                      "tool_choice", "logprobs", "top_logprobs", "logit_bias", "modalities", "audio",
                      "service_tier", "functions", "function_call", "web_search_options", "top_k"})
_DIRECT = {"temperature": "temperature", "top_p": "topP", "seed": "seed", "presence_penalty": "presencePenalty",
           "frequency_penalty": "frequencyPenalty", "n": "candidateCount", "top_k": "topK"}
# Gemini's largest output limit (2.5 and 3 models) and the largest thinking budget every thinking model takes
# (2.5 Flash's; 2.5 Pro goes to 32,768): larger asks are lowered to these rather than refused by Google.
MAX_OUTPUT_TOKENS = 65536
MAX_THINKING_BUDGET = 24576
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576,
                    "xhigh": MAX_THINKING_BUDGET}
_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
                "gif": "image/gif", "heic": "image/heic", "heif": "image/heif"}
SKIP_SIGNATURE = "skip_thought_signature_validator"
_SIGNING_MODELS = re.compile(r"(^|/)gemini-([3-9]|\d\d)")
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})
# Google's error status names → HTTP status (for an in-stream error without a numeric code).
_GOOGLE_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
                  "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499,
                  "INTERNAL": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}


# ---------------------------------------------------------------------------------------------------------
# Reading Gemini answers (shared with the other directions served by gemini).


def count(metadata: Mapping[str, Any], name: str) -> int:
    value = metadata.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def finish_filtered(reason: str) -> bool:
    return reason in _FILTERED


def gemini_error(chunk: Mapping[str, Any], target: ClientFormat) -> SSEEvent:
    """A Gemini in-stream `{"error": {code, message, status}}` as the target format's error event."""
    error = chunk.get("error")
    error = error if isinstance(error, dict) else {}
    kind = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) and code >= 400 else (
        _GOOGLE_STATUS.get(kind or "", 500))
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    return error_bodies.stream_error(status, message or "The upstream API failed.", kind, target)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def candidates_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    candidates = body.get("candidates")
    return [c for c in candidates if isinstance(c, dict)] if isinstance(candidates, list) else []


def parts_of(candidate: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def blocked(body: Mapping[str, Any]) -> bool:
    """A prompt Gemini refused outright: `promptFeedback.blockReason` and no candidates."""
    feedback = body.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason")) and not candidates_of(body)


def data_url(url: str, field: str) -> tuple[str, str]:
    """(mimeType, base64 data) of a `data:<type>;base64,<data>` URL."""
    head, comma, data = url.partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        raise InvalidRequest(f"'{field}' must be a base64 data: URL (data:<media type>;base64,<data>).")
    return head[5:-7], data


# ---------------------------------------------------------------------------------------------------------
# Request


def _text_of(content: Any, field: str, kinds: tuple[str, ...] = ("text",)) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"'{field}' must be a string or an array of content parts.")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise InvalidRequest(f"'{field}' part type {kind!r} is not supported here; use text parts.")
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"'{field}' {kind} parts need a string '{kind}'.")
        if text:
            texts.append(text)
    return texts


def _image(part: Mapping[str, Any], field: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"'{field}.image_url.url' must be a string.")
    if url.startswith("data:"):
        mime, data = data_url(url, f"{field}.image_url.url")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://")):
        extension = url.split("?", 1)[0].rsplit("/", 1)[-1].rpartition(".")[2].lower()
        image_type = _IMAGE_TYPES.get(extension)
        if image_type is None:
            raise InvalidRequest(f"'{field}.image_url.url': Gemini needs an image URL's type; this URL does not "
                                 "end in .png, .jpg, .jpeg, .webp, .gif, .heic or .heif. Send it as a data: URL.")
        return {"fileData": {"mimeType": image_type, "fileUri": url}}
    raise InvalidRequest(f"'{field}.image_url.url' must be a data: URL or an http(s) URL.")


def _user_parts(content: Any, field: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"'{field}' must be a string or an array of content parts.")
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        where = f"{field}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{where}' must be a content part object.")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(f"'{where}.text' must be a string.")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image(part, where))
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str):
                raise InvalidRequest(f"'{where}.file': only 'file_data' (a data: URL) is supported here; "
                                     "'file_id' names an OpenAI upload Gemini cannot read.")
            mime, payload = data_url(data, f"{where}.file.file_data")
            parts.append({"inlineData": {"mimeType": mime, "data": payload}})
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            audio_format = audio.get("format") if isinstance(audio, dict) else None
            audio_type = _AUDIO_TYPES.get(audio_format) if isinstance(audio_format, str) else None
            if not isinstance(data, str) or audio_type is None:
                raise InvalidRequest(f"'{where}.input_audio' needs base64 'data' and a 'format' of wav or mp3.")
            parts.append({"inlineData": {"mimeType": audio_type, "data": data}})
        else:
            raise InvalidRequest(f"'{where}': content part type {kind!r} is not supported on a Gemini model.")
    return parts


def _arguments(call: Mapping[str, Any], where: str) -> Any:
    function = call.get("function")
    raw = function.get("arguments") if isinstance(function, dict) else None
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise InvalidRequest(f"'{where}.function.arguments' must be a JSON string.")
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"'{where}.function.arguments' is not valid JSON.") from None
    if not isinstance(args, dict):
        raise InvalidRequest(f"'{where}.function.arguments' must be a JSON object.")
    return args


def _call_signature(call: Mapping[str, Any], platform: str) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    return seal.opened(value, platform) if isinstance(value, str) else None


def _assistant_parts(message: Mapping[str, Any], where: str, names: dict[str, str],
                     platform: str) -> list[dict[str, Any]]:
    if message.get("audio") is not None:
        raise InvalidRequest(f"'{where}.audio': earlier audio answers cannot be sent to a Gemini model.")
    if message.get("function_call") is not None:
        raise InvalidRequest(f"'{where}.function_call' is deprecated; use 'tool_calls'.")
    parts: list[dict[str, Any]] = [{"text": text} for text in
                                   _text_of(message.get("content"), f"{where}.content", ("text", "refusal"))]
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"text": refusal})
    calls = message.get("tool_calls")
    if calls is None:
        return parts
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{where}.tool_calls' must be an array.")
    for index, call in enumerate(calls):
        at = f"{where}.tool_calls[{index}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise InvalidRequest(f"'{at}': only function tool calls are supported on a Gemini model.")
        function = call.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'{at}.function.name' must be a non-empty string.")
        call_id = call.get("id")
        if isinstance(call_id, str):
            names[call_id] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(call, at)}}
        signature = _call_signature(call, platform)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _tool_part(message: Mapping[str, Any], where: str, names: Mapping[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(f"'{where}.tool_call_id' {call_id!r} does not match a tool call of an earlier "
                             "assistant message (Gemini needs the function's name).")
    output = "".join(_text_of(message.get("content"), f"{where}.content"))
    return {"functionResponse": {"name": name, "response": {"output": output}}}


def sign_calls(contents: list[dict[str, Any]], model: str) -> None:
    """Gemini 3 and later refuse a model turn whose first function call has no thought signature (history
    made elsewhere, or a signature that could not be restored): such a call gets Google's documented
    `skip_thought_signature_validator` token. Earlier models need none and get none."""
    if not _SIGNING_MODELS.search(model):
        return
    for content in contents:
        if content["role"] != "model":
            continue
        parts = content["parts"]
        for index, part in enumerate(parts):
            if "functionCall" in part:
                if "thoughtSignature" not in part:
                    parts[index] = {**part, "thoughtSignature": SKIP_SIGNATURE}
                break


def contents_and_system(messages: Any, platform: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.")
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{where}' must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _text_of(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            gemini_role, parts = "user", _user_parts(message.get("content"), f"{where}.content")
        elif role == "assistant":
            gemini_role, parts = "model", _assistant_parts(message, where, names, platform)
        elif role == "tool":
            gemini_role, parts = "user", [_tool_part(message, where, names)]
        elif role == "function":
            raise InvalidRequest(f"'{where}.role' 'function' is deprecated; use 'tool' messages.")
        else:
            raise InvalidRequest(f"'{where}.role' {role!r} is not a chat message role.")
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise InvalidRequest("'messages' holds no user or assistant content to send.")
    return contents, system


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array.")
    declarations = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        function = tool.get("function") if isinstance(tool, dict) else None
        if kind != "function" or not isinstance(function, dict):
            raise InvalidRequest(f"'tools[{index}]': tool type {kind!r} is not supported on a Gemini model; "
                                 "only function tools are.")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'tools[{index}].function.name' must be a non-empty string.")
        declaration: dict[str, Any] = {"name": name}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        mode = allowed.get("mode") if isinstance(allowed, dict) else None
        tools = allowed.get("tools") if isinstance(allowed, dict) else None
        if mode != "required":
            raise InvalidRequest("'tool_choice.allowed_tools.mode' must be 'required' on a Gemini model "
                                 "(Gemini limits the functions only when a call is required).")
        names = [tool["function"]["name"] for tool in tools or () if isinstance(tool, dict)
                 and isinstance(tool.get("function"), dict) and isinstance(tool["function"].get("name"), str)]
        return {"mode": "ANY", "allowedFunctionNames": names}
    raise InvalidRequest("'tool_choice' must be 'auto', 'none', 'required' or a function choice.")


def _generation(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limits = [body[name] for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
    for limit in limits:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequest("'max_tokens' / 'max_completion_tokens' must be a positive integer.")
    if limits:
        config["maxOutputTokens"] = min(*limits, MAX_OUTPUT_TOKENS)
    for name, gemini in _DIRECT.items():
        if body.get(name) is not None:
            config[gemini] = body[name]
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    elif stop is not None and stop != []:
        raise InvalidRequest("'stop' must be a string or an array of strings.")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            config["responseMimeType"] = "application/json"
            if schema is not None:
                config["responseJsonSchema"] = schema
        elif kind != "text":
            raise InvalidRequest(f"'response_format.type' {kind!r} is not supported.")
    effort = body.get("reasoning_effort")
    if effort is not None:
        budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
        if budget is None:
            raise InvalidRequest(f"'reasoning_effort' {effort!r} is not one of {', '.join(THINKING_BUDGETS)}.")
        config["thinkingConfig"] = ({"thinkingBudget": 0} if budget == 0
                                    else {"thinkingBudget": budget, "includeThoughts": True})
    return config


def _refusals(body: Mapping[str, Any]) -> None:
    for name in body:
        if name not in _CONSUMED and name not in _HANDLED:
            raise InvalidRequest(f"'{name}' is not a supported parameter on a Gemini model.")
    if body.get("logprobs") or body.get("top_logprobs") is not None:
        raise InvalidRequest("'logprobs' / 'top_logprobs' are not supported on a Gemini model.")
    if body.get("logit_bias"):
        raise InvalidRequest("'logit_bias' is not supported on a Gemini model (its tokenizer differs).")
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise InvalidRequest("'audio' output is not supported on a Gemini model through this API.")
    if body.get("service_tier") not in (None, "auto", "default"):
        raise InvalidRequest(f"'service_tier' {body['service_tier']!r} is not supported on a Gemini model.")
    if body.get("functions") is not None or body.get("function_call") is not None:
        raise InvalidRequest("'functions' / 'function_call' are deprecated; use 'tools' / 'tool_choice'.")
    if body.get("web_search_options") is not None:
        raise InvalidRequest("'web_search_options' (OpenAI's web search) is not supported on a Gemini model.")


def _request(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    _refusals(body)
    contents, system = contents_and_system(body.get("messages"), target.platform)
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
        if choice not in ("auto", "none") and "tools" not in out:
            raise InvalidRequest("'tool_choice' asks for a tool call but 'tools' declares none.")
        out["toolConfig"] = {"functionCallingConfig": _tool_choice(choice)}
    generation = _generation(body)
    if generation:
        out["generationConfig"] = generation
    return out


# ---------------------------------------------------------------------------------------------------------
# Answers


def _usage(metadata: Any) -> dict[str, Any]:
    metadata = metadata if isinstance(metadata, dict) else {}
    prompt = count(metadata, "promptTokenCount") + count(metadata, "toolUsePromptTokenCount")
    thoughts = count(metadata, "thoughtsTokenCount")
    completion = count(metadata, "candidatesTokenCount") + thoughts
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": count(metadata, "cachedContentTokenCount"),
                                      "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": thoughts, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _finish(reason: Any, calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if isinstance(reason, str) and finish_filtered(reason):
        return "content_filter"
    return "tool_calls" if calls else "stop"


def _call_id(call: Mapping[str, Any], response_id: str, number: int) -> str:
    given = call.get("id")
    return f"call_{given}" if isinstance(given, str) and given else f"call_{response_id}_{number}"


def _tool_call(part: Mapping[str, Any], call_id: str, platform: str) -> dict[str, Any]:
    call = part["functionCall"]
    args = call.get("args")
    out: dict[str, Any] = {"id": call_id, "type": "function",
                           "function": {"name": call.get("name") or "",
                                        "arguments": orjson.dumps(args if args is not None else {}).decode()}}
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": seal.sealed(platform, signature)}}
    return out


def _response_id(body: Mapping[str, Any]) -> str:
    given = body.get("responseId")
    return given if isinstance(given, str) and given else secrets.token_hex(12)


def _response(body: Mapping[str, Any], target: Target) -> dict[str, Any]:
    response_id = _response_id(body)
    choices = []
    calls_made = 0
    for position, candidate in enumerate(candidates_of(body)):
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in parts_of(candidate):
            if isinstance(part.get("functionCall"), dict):
                call_id = _call_id(part["functionCall"], response_id, calls_made)
                calls_made += 1
                calls.append(_tool_call(part, call_id, target.platform))
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else texts).append(part["text"])
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None,
                                   "refusal": None, "annotations": []}
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if calls:
            message["tool_calls"] = calls
        index = candidate.get("index")
        choices.append({"index": index if isinstance(index, int) else position, "message": message,
                        "logprobs": None, "finish_reason": _finish(candidate.get("finishReason"), bool(calls))})
    if not choices:
        filtered = blocked(body)
        choices.append({"index": 0, "message": {"role": "assistant", "content": None if filtered else "",
                                                "refusal": None, "annotations": []},
                        "logprobs": None, "finish_reason": "content_filter" if filtered else "stop"})
    return {"id": f"chatcmpl-{response_id}", "object": "chat.completion", "created": int(time.time()),
            "model": target.model, "choices": choices, "usage": _usage(body.get("usageMetadata"))}


class GeminiToChatStream(StreamConverter):
    """Gemini SSE chunks → chat.completion.chunk events, one choice per candidate."""

    def __init__(self, target: Target, include_usage: bool) -> None:
        self._target = target
        self._include_usage = include_usage
        self._id = ""
        self._created = int(time.time())
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tool_index: dict[int, int] = {}
        self._calls_made = 0
        self._usage: Any = None
        self._done = False

    def _chunk(self, choices: list[dict[str, Any]]) -> SSEEvent:
        return data_event({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                           "model": self._target.model, "choices": choices})

    def _delta(self, index: int, delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def _start(self, index: int, out: list[SSEEvent]) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(self._delta(index, {"role": "assistant", "content": ""}))

    def feed(self, event: SSEEvent) -> list[SSEEvent]:
        if self._done:
            return []
        chunk = parsed(event)
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            self._done = True
            return [gemini_error(chunk, ClientFormat.OPENAI)]
        if not self._id:
            self._id = f"chatcmpl-{_response_id(chunk)}"
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        out: list[SSEEvent] = []
        candidates = candidates_of(chunk)
        for position, candidate in enumerate(candidates):
            index = _int(candidate.get("index"), position)
            if index in self._finished:
                continue
            for part in parts_of(candidate):
                if isinstance(part.get("functionCall"), dict):
                    self._start(index, out)
                    number = self._tool_index.get(index, 0)
                    self._tool_index[index] = number + 1
                    call_id = _call_id(part["functionCall"], self._id[len("chatcmpl-"):], self._calls_made)
                    self._calls_made += 1
                    call = {"index": number, **_tool_call(part, call_id, self._target.platform)}
                    out.append(self._delta(index, {"tool_calls": [call]}))
                elif isinstance(part.get("text"), str) and part["text"]:
                    self._start(index, out)
                    field = "reasoning_content" if part.get("thought") else "content"
                    out.append(self._delta(index, {field: part["text"]}))
            reason = candidate.get("finishReason")
            if reason:
                self._start(index, out)
                self._finished.add(index)
                out.append(self._delta(index, {}, _finish(reason, index in self._tool_index)))
        if not candidates and blocked(chunk):
            self._start(0, out)
            self._finished.add(0)
            out.append(self._delta(0, {}, "content_filter"))
        pending = any(_int(candidate.get("index"), position) not in self._finished
                      for position, candidate in enumerate(candidates))
        if self._finished and self._finished >= self._started and not pending:
            out += self._end()
        return out

    def _end(self) -> list[SSEEvent]:
        self._done = True
        out = []
        if self._include_usage:
            out.append(data_event({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                                   "model": self._target.model, "choices": [], "usage": _usage(self._usage)}))
        out.append(OPENAI_DONE)
        return out

    def finish(self) -> list[SSEEvent]:
        if self._done:
            return []
        if not self._id:
            self._id = f"chatcmpl-{secrets.token_hex(12)}"
        out: list[SSEEvent] = []
        if not self._started:
            self._start(0, out)
        for index in sorted(self._started - self._finished):
            self._finished.add(index)
            out.append(self._delta(index, {}, _finish("STOP", index in self._tool_index)))
        return out + self._end()


class OpenAIToGemini(Translator):
    client = ClientFormat.OPENAI
    upstream = ClientFormat.GEMINI

    def request(self, body: Mapping[str, Any], headers: Mapping[str, str], target: Target) -> Conversion:
        return Conversion(_request(body, target), {})

    def response(self, body: Mapping[str, Any], target: Target) -> dict[str, Any]:
        return _response(body, target)

    def stream(self, target: Target) -> StreamConverter:
        return GeminiToChatStream(target, include_usage=target.include_usage)


TRANSLATOR = OpenAIToGemini()
