"""Google's Gemini API (Generative Language API) as the vendor speaks it, under ``/v1beta`` and ``/v1``:

``POST /models/{model}:generateContent``, ``:streamGenerateContent`` (``?alt=sse``: SSE; without it: one
JSON array streamed element by element), ``:countTokens``, ``GET /models`` (paged) and ``GET /models/{model}``.

Authentication: the ``x-goog-api-key`` header or the ``?key=`` query parameter. No key is 403
PERMISSION_DENIED, a wrong key 400 API_KEY_INVALID, an unknown model 404 NOT_FOUND (`gemini_errors`).
Shapes follow vendor-recordings/gemini:

- reply: ``candidates[{content{parts, role: "model"}, finishReason, index, finishMessage?}]``,
  ``usageMetadata{promptTokenCount, candidatesTokenCount, totalTokenCount, cachedContentTokenCount?,
  promptTokensDetails, cacheTokensDetails?, thoughtsTokenCount?}``, ``modelVersion``, ``responseId``
  (base64url of the Unix time, little-endian, and 13 random bytes: 23 characters, as the vendor's);
  the non-stream body is printed with 2-space indentation and a trailing newline;
- SSE stream: ``data: {json}\\r\\n\\r\\n`` per chunk, the JSON printed with ``": "`` after keys and bare
  ``,`` between members, exactly as recorded; every chunk carries the cumulative ``usageMetadata`` and the
  last one ``finishReason`` (there is no ``[DONE]``). JSON-array stream: ``[{…}`` then ``\\n,\\r\\n{…}``
  per further chunk, then ``\\n]``, each object indented like the non-stream body;
- thinking: with ``generationConfig.thinkingConfig`` (``includeThoughts``, a non-zero ``thinkingBudget`` or
  a ``thinkingLevel``) the reply reports ``thoughtsTokenCount`` (`GeminiConfig.thought_tokens`, at most
  the budget); with ``includeThoughts`` it first sends ``{"text": …, "thought": true}`` parts, in chunks
  whose usage has no ``candidatesTokenCount`` yet (as recorded). Models in ``text_signature_models``
  (Gemini 3) put a ``thoughtSignature`` on the last text part, as those models do;
- function calls: when the request declares ``tools[].functionDeclarations`` and the latest user turn
  names a declared function (or ``toolConfig.functionCallingConfig.mode`` is ``ANY``: the first allowed
  one), the reply is ``functionCall`` parts (args filled from the parameter schema), the first with a
  ``thoughtSignature``, ``finishReason: STOP`` and ``finishMessage: "Model generated function call(s)."``;
  a turn that answers with ``functionResponse`` parts gets text again;
- cache reads: a request naming ``cachedContent`` reports ``cachedContentTokenCount``
  (`GeminiConfig.cached_content_tokens`, counted in ``promptTokenCount`` too) and ``cacheTokensDetails``;
- JSON mode: ``generationConfig.responseMimeType: application/json`` makes the answer text JSON that
  conforms to ``responseJsonSchema`` (JSON Schema) or ``responseSchema`` (the OpenAPI subset, upper-case
  type names): ``enum[0]``, non-empty strings, numbers within their bounds, every property; without a
  schema an object. It streams cut like text; ``text/x.enum`` answers the schema's first enum value;
- ``generationConfig.maxOutputTokens`` below the reply length cuts it with ``finishReason: MAX_TOKENS``;
- faults: status faults answer in Google's envelope (``overloaded`` is 503 UNAVAILABLE); ``stream_error``
  sends N chunks, then the error object as one more chunk (``data: {"error": …}`` or an array element).

The vendor sends no rate-limit headers. Response headers: ``Content-Type`` (``application/json;
charset=UTF-8``, or ``text/event-stream`` with ``Content-Disposition: attachment``), ``Vary``,
``Server-Timing``, ``X-Frame-Options``, ``X-Content-Type-Options``, ``X-XSS-Protection``, ``Server``.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import struct
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, textgen
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..schema_values import arguments_for, value_for
from ..settings import Field, Section, VendorConfig, common_fields, model_matcher, positive, string_tuple
from ..sse import Frame
from . import gemini_errors as errors
from .gemini_errors import Framing, GeminiError
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "gemini"
VERSIONS = ("v1beta", "v1")
CALL_MESSAGE = "Model generated function call(s)."
SIGNED_TEXT_MODELS = ["gemini-3*"]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_GENERATION_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
#: Models ``GET /models`` lists by default: version, display name, input and output token limits, thinking.
KNOWN_MODELS: dict[str, tuple[str, str, int, int, bool]] = {
    "gemini-2.5-pro": ("2.5", "Gemini 2.5 Pro", 1_048_576, 65_536, True),
    "gemini-2.5-flash": ("001", "Gemini 2.5 Flash", 1_048_576, 65_536, True),
    "gemini-2.5-flash-lite": ("001", "Gemini 2.5 Flash-Lite", 1_048_576, 65_536, True),
    "gemini-2.0-flash": ("2.0", "Gemini 2.0 Flash", 1_048_576, 8_192, False),
    "gemini-3-pro-preview": ("3-pro-preview-11-2025", "Gemini 3 Pro Preview", 1_048_576, 65_536, True),
    "gemini-3-flash-preview": ("3-flash-preview-12-2025", "Gemini 3 Flash Preview", 1_048_576, 65_536, True),
}
#: Top-level GenerateContentRequest fields (JSON names and their proto names); others are refused.
GENERATE_FIELDS = frozenset({
    "model", "contents", "tools", "toolConfig", "tool_config", "safetySettings", "safety_settings",
    "systemInstruction", "system_instruction", "generationConfig", "generation_config", "cachedContent",
    "cached_content", "serviceTier", "service_tier",
})
COUNT_FIELDS = frozenset({"contents", "generateContentRequest", "generate_content_request"})
ROLES = ("user", "model")
_CHAR_POSITION = re.compile(r"\(char (\d+)\)")
_SSE_JSON = json.JSONEncoder(separators=(",", ": "), ensure_ascii=False).encode
_RESPONSE_ID_SLOT = "@@SIMULATOR-RESPONSE-ID@@"
_rng = random.Random()


@dataclass(frozen=True, slots=True)
class GeminiConfig(VendorConfig):
    """The ``gemini`` section: the common keys plus the listed models and the thinking and cache sizes."""

    listed_models: tuple[str, ...] = ()
    thought_tokens: int = 24
    cached_content_tokens: int = 1024
    text_signature_models: tuple[str, ...] = ()
    _signed_text: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super(GeminiConfig, self).__post_init__()
        object.__setattr__(self, "_signed_text", model_matcher(self.text_signature_models))

    def signs_text(self, model: str) -> bool:
        return self._signed_text.match(model) is not None


SECTION = Section("gemini", GeminiConfig, (
    *common_fields("gemini", [defaults.GEMINI_KEY], list(defaults.GEMINI_MODELS)),
    Field("listed_models", string_tuple, list(KNOWN_MODELS)),
    Field("thought_tokens", positive(int), 24),
    Field("cached_content_tokens", positive(int), 1024),
    Field("text_signature_models", string_tuple, SIGNED_TEXT_MODELS),
))


# Identifiers -------------------------------------------------------------------------------------------


def response_id(now: float | None = None) -> str:
    """``responseId``: base64url (unpadded) of the Unix time as 4 little-endian bytes and 13 random bytes."""
    stamp = struct.pack("<I", int(time.time() if now is None else now) & 0xFFFFFFFF)
    return base64.urlsafe_b64encode(stamp + _rng.randbytes(13)).rstrip(b"=").decode()


def _signature() -> str:
    # A serialized message (field 1, length-delimited) in standard base64, like the recorded signatures.
    size = _rng.randint(120, 240)
    prefix = bytes([0x0A, (size & 0x7F) | 0x80, size >> 7]) if size >= 0x80 else bytes([0x0A, size])
    return base64.b64encode(prefix + _rng.randbytes(size)).decode()


_SIGNATURES = tuple(_signature() for _ in range(32))


def thought_signature() -> str:
    return _SIGNATURES[_rng.randrange(len(_SIGNATURES))]


# Request reading ---------------------------------------------------------------------------------------


def _get(mapping: Any, camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name (the vendor accepts both)."""
    if not isinstance(mapping, dict):
        return None
    return mapping[camel] if camel in mapping else mapping.get(snake)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _invalid_value(where: str, kind: str, value: Any, framing: Framing) -> GeminiError:
    return errors.invalid_argument(f"Invalid value at '{where}' ({kind}), {_json_text(value)}", framing,
                                   field=where)


def _int32(value: Any, where: str, framing: Framing) -> int:
    """An int32 as proto JSON reads it: a number without fraction or a decimal string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _invalid_value(where, "TYPE_INT32", value, framing)


def parse_body(ex: Exchange, framing: Framing, known: frozenset[str]) -> dict[str, Any]:
    """The request object, or the vendor's 400 for unparsable JSON, a non-object or unknown fields."""
    if ex.bad_json is not None:
        if not ex.raw.strip():
            return {}
        match = _CHAR_POSITION.search(ex.bad_json)
        at = int(match.group(1)) if match else 0
        text = ex.raw.decode("utf-8", "replace")
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        line = text[line_start: line_end if line_end >= 0 else len(text)]
        message = f"Invalid JSON payload received. Unexpected token.\n{line}\n{' ' * (at - line_start)}^"
        raise errors.invalid_argument(message, framing, violation=True)
    body = ex.body
    if not isinstance(body, dict):
        message = 'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        raise errors.invalid_argument(message, framing, violation=True)
    unknown = [name for name in body if name not in known]
    if unknown:
        lines = [f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.' for name in unknown]
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"description": line} for line in lines]}]
        raise GeminiError(400, "\n".join(lines), details, framing=framing)
    return body


def check_contents(contents: Any, version: str, framing: Framing) -> list[dict[str, Any]]:
    """The vendor's checks of ``contents``: present, non-empty, each with parts and a valid role."""
    if contents is None or contents == []:
        raise errors.invalid_argument("* GenerateContentRequest.contents: contents is not specified\n", framing)
    kind = f"type.googleapis.com/google.ai.generativelanguage.{version}.Content"
    if not isinstance(contents, list):
        raise _invalid_value("contents", kind, contents, framing)
    for index, content in enumerate(contents):
        if not isinstance(content, dict):
            raise _invalid_value(f"contents[{index}]", kind, content, framing)
        parts = content.get("parts")
        if not parts:
            message = f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n"
            raise errors.invalid_argument(message, framing)
        if not isinstance(parts, list):
            raise _invalid_value(f"contents[{index}].parts", kind.replace(".Content", ".Part"), parts, framing)
        role = content.get("role")
        if role not in (None, "", *ROLES):
            raise errors.invalid_argument("Please use a valid role: user, model.", framing)
    return contents


@dataclass(frozen=True, slots=True)
class Thinking:
    tokens: int = 0
    include: bool = False


def thinking(generation: dict[str, Any], budget_tokens: int, framing: Framing) -> Thinking:
    """Whether and how much the model thinks: a thinkingConfig with includeThoughts, a budget other than
    0 or a level turns it on; a positive budget caps the thought tokens."""
    config = _get(generation, "thinkingConfig", "thinking_config")
    if config is None:
        return Thinking()
    where = "generation_config.thinking_config"
    if not isinstance(config, dict):
        raise _invalid_value(where, "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig",
                             config, framing)
    include = _get(config, "includeThoughts", "include_thoughts")
    if include is not None and not isinstance(include, bool):
        raise _invalid_value(f"{where}.include_thoughts", "TYPE_BOOL", include, framing)
    raw_budget = _get(config, "thinkingBudget", "thinking_budget")
    budget = None if raw_budget is None else _int32(raw_budget, f"{where}.thinking_budget", framing)
    level = _get(config, "thinkingLevel", "thinking_level")
    if budget == 0 or not (include or budget is not None or level is not None):
        return Thinking()
    tokens = min(budget_tokens, budget) if budget is not None and budget > 0 else budget_tokens
    return Thinking(tokens, include is True)


def response_text(generation: dict[str, Any]) -> str | None:
    """The answer text JSON mode fixes: with ``responseMimeType: application/json`` JSON conforming to
    ``responseJsonSchema`` or ``responseSchema`` (an object without either); with ``text/x.enum`` the
    schema's first enum value. None for ordinary text."""
    mime = _get(generation, "responseMimeType", "response_mime_type")
    if not isinstance(mime, str):
        return None
    mime = mime.strip().lower()
    schema = _get(generation, "responseJsonSchema", "response_json_schema")
    if schema is None:
        schema = _get(generation, "responseSchema", "response_schema")
    if mime == "application/json":
        value = value_for(schema) if isinstance(schema, dict) else {"response": "sim"}
        return json.dumps(value, ensure_ascii=False)
    if mime == "text/x.enum" and isinstance(schema, dict):
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return str(enum[0])
    return None


def _arguments(declaration: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a declared function: a value of the right type for each required parameter."""
    schema = (declaration.get("parameters") or _get(declaration, "parametersJsonSchema", "parameters_json_schema")
              or {})
    return arguments_for(schema)


def function_calls(body: dict[str, Any], contents: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The calls the model makes: the declared functions the latest user turn names, or with mode ANY
    the first allowed one; none with mode NONE or when the turn answers earlier calls."""
    declarations: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        found = _get(tool, "functionDeclarations", "function_declarations")
        if isinstance(found, list):
            declarations.extend(d for d in found if isinstance(d, dict) and isinstance(d.get("name"), str))
    if not declarations:
        return ()
    calling = _get(_get(body, "toolConfig", "tool_config"), "functionCallingConfig", "function_calling_config")
    mode = str(_get(calling, "mode", "mode") or "AUTO").upper()
    allowed = _get(calling, "allowedFunctionNames", "allowed_function_names")
    if mode == "NONE":
        return ()
    if isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d["name"] in allowed] or declarations
    last = contents[-1]
    parts = [part for part in last.get("parts") or () if isinstance(part, dict)]
    if any(_get(part, "functionResponse", "function_response") is not None for part in parts):
        return ()
    text = " ".join(part["text"] for part in parts if isinstance(part.get("text"), str))
    chosen = [d for d in declarations if d["name"] in text]
    if not chosen and mode == "ANY":
        chosen = declarations[:1]
    return tuple({"name": d["name"], "args": _arguments(d)} for d in chosen)


# Replies -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a reply needs, decided by validation."""

    model: str
    prompt_tokens: int
    cached_tokens: int
    candidates_tokens: int
    finish: str
    thinking: Thinking
    signed_text: bool
    calls: tuple[dict[str, Any], ...]
    #: The answer text when the request fixes it (JSON mode), else None for generated text.
    text: str | None = None


def usage(prompt: int, candidates: int | None, thoughts: int, cached: int) -> dict[str, Any]:
    """``usageMetadata`` in the vendor's key order; `candidates` None leaves the count out (thought chunks)."""
    out: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates is not None:
        out["candidatesTokenCount"] = candidates
    out["totalTokenCount"] = prompt + (candidates or 0) + thoughts
    if cached:
        out["cachedContentTokenCount"] = cached
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def chunk(parts: list[dict[str, Any]], usage_metadata: dict[str, Any], model: str, rid: str,
          finish: str | None = None, finish_message: str | None = None) -> dict[str, Any]:
    """One GenerateContentResponse (a whole reply, or one stream chunk)."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    if finish_message:
        candidate["finishMessage"] = finish_message
    return {"candidates": [candidate], "usageMetadata": usage_metadata, "modelVersion": model, "responseId": rid}


def _call_parts(calls: tuple[dict[str, Any], ...], signature: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"functionCall": call} for call in calls]
    parts[0]["thoughtSignature"] = signature
    return parts


def _calls_tokens(calls: tuple[dict[str, Any], ...]) -> int:
    return textgen.estimate_tokens(orjson.dumps(calls).decode())


def reply_body(plan: Plan, rid: str, signature: str) -> dict[str, Any]:
    """The non-stream GenerateContentResponse."""
    parts: list[dict[str, Any]] = []
    if plan.thinking.include:
        parts.append({"text": textgen.reply(plan.thinking.tokens).text, "thought": True})
    finish_message = None
    if plan.calls:
        parts.extend(_call_parts(plan.calls, signature))
        finish_message = CALL_MESSAGE
    else:
        text = textgen.reply(plan.candidates_tokens).text if plan.text is None else plan.text
        part: dict[str, Any] = {"text": text}
        if plan.signed_text:
            part["thoughtSignature"] = signature
        parts.append(part)
    counts = usage(plan.prompt_tokens, plan.candidates_tokens, plan.thinking.tokens, plan.cached_tokens)
    return chunk(parts, counts, plan.model, rid, plan.finish, finish_message)


def _fixed_chunks(text: str, chunk_tokens: int) -> tuple[tuple[bytes, int], ...]:
    """A fixed answer text cut like generated text: `chunk_tokens` tokens of 4 characters per chunk."""
    size = max(1, chunk_tokens) * textgen.CHARS_PER_TOKEN
    cut = [text[start:start + size] for start in range(0, len(text), size)] or [""]
    return tuple((orjson.dumps(piece), textgen.estimate_tokens(piece)) for piece in cut)


def stream_chunks(plan: Plan, chunk_tokens: int, rid: str, signature: str) -> list[tuple[dict[str, Any], int]]:
    """The chunks of a streamed reply with the output tokens each carries: thought chunks (if shown), then
    text chunks with cumulative counts, the last with ``finishReason``; or one chunk of function calls."""
    prompt, cached, thoughts = plan.prompt_tokens, plan.cached_tokens, plan.thinking.tokens
    out: list[tuple[dict[str, Any], int]] = []
    if plan.thinking.include:
        thought = 0
        for text_json, count in textgen.chunks(thoughts, chunk_tokens):
            thought += count
            parts = [{"text": orjson.loads(text_json), "thought": True}]
            out.append((chunk(parts, usage(prompt, None, thought, cached), plan.model, rid), count))
    if plan.calls:
        counts = usage(prompt, plan.candidates_tokens, thoughts, cached)
        calls = chunk(_call_parts(plan.calls, signature), counts, plan.model, rid, plan.finish, CALL_MESSAGE)
        out.append((calls, plan.candidates_tokens))
        return out
    pieces = (textgen.chunks(plan.candidates_tokens, chunk_tokens) if plan.text is None
              else _fixed_chunks(plan.text, chunk_tokens))
    sent = 0
    for index, (text_json, count) in enumerate(pieces):
        sent += count
        last = index == len(pieces) - 1
        part: dict[str, Any] = {"text": orjson.loads(text_json)}
        if last and plan.signed_text:
            part["thoughtSignature"] = signature
        counts = usage(prompt, sent, thoughts, cached)
        out.append((chunk([part], counts, plan.model, rid, plan.finish if last else None), count))
    return out


def sse_frame(value: Any) -> bytes:
    """One ``data:`` event, the JSON printed as the vendor prints stream chunks, CRLF-separated."""
    return b"data: " + errors.escape(_SSE_JSON(value).encode()) + b"\r\n\r\n"


def array_frame(value: Any, first: bool) -> bytes:
    """One element of a JSON-array stream: ``[`` before the first, ``\\n,\\r\\n`` before the others."""
    return (b"[" if first else b"\n,\r\n") + errors.pretty(value)


ARRAY_END = b"\n]"


def frames_of(chunks: list[tuple[dict[str, Any], int]], framing: Framing) -> list[Frame]:
    if framing == "sse":
        return [(sse_frame(value), tokens) for value, tokens in chunks]
    return [(array_frame(value, index == 0), tokens) for index, (value, tokens) in enumerate(chunks)]


@lru_cache(maxsize=256)
def _text_frames(plan: Plan, chunk_tokens: int, framing: Framing) -> tuple[Frame, ...]:
    """A text reply's frames with a placeholder response id (replies of the same shape share them)."""
    return tuple(frames_of(stream_chunks(plan, chunk_tokens, _RESPONSE_ID_SLOT, thought_signature()), framing))


def reply_frames(plan: Plan, chunk_tokens: int, framing: Framing, rid: str) -> list[Frame]:
    if plan.calls:
        return frames_of(stream_chunks(plan, chunk_tokens, rid, thought_signature()), framing)
    slot, value = _RESPONSE_ID_SLOT.encode(), rid.encode()
    return [(data.replace(slot, value), tokens) for data, tokens in _text_frames(plan, chunk_tokens, framing)]


# Endpoints ---------------------------------------------------------------------------------------------


def _version(request: web.Request) -> str:
    return request.path.split("/", 2)[1]


class GeminiEndpoint(Endpoint):
    """What every Gemini route shares: the key check and Google's error envelope."""

    api = API
    section = SECTION.name
    vendor: GeminiConfig
    #: The RPC name the vendor's 404 names (``… is not supported for generateContent``).
    method = "get"

    def framing(self, request: web.Request) -> Framing:
        return "json"

    def admit(self, ex: Exchange) -> str:
        request = ex.request
        key = request.headers.get("x-goog-api-key", "").strip() or request.query.get("key", "").strip()
        if not key:
            authorization = request.headers.get("authorization", "")
            if authorization[:7].lower() == "bearer ":
                raise errors.unauthenticated(self.framing(request))
            raise errors.no_key(self.framing(request))
        if not self.vendor.key_ok(key):
            raise errors.key_invalid(self.framing(request))
        return key

    def bad_request(self, message: str) -> Refusal:
        return errors.invalid_argument(message, "json")

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        request = ex.request
        model = request.match_info.get("model", "unknown")
        return errors.fault_error(fault, model, _version(request), self.method, self.framing(request))

    def not_found(self, request: web.Request, model: str) -> GeminiError:
        return errors.model_not_found(model, _version(request), self.method, self.framing(request))

    def headers(self, content_type: str, seconds: float, *, attachment: bool = False) -> dict[str, str]:
        return errors.google_headers(content_type, duration_ms=int(seconds * 1000), attachment=attachment)


class GenerateContent(GeminiEndpoint):
    """``POST /{version}/models/{model}:generateContent``. Order: key, faults, JSON, fields, model, contents."""

    method = "generateContent"

    def validate(self, ex: Exchange) -> Plan:
        request = ex.request
        framing = self.framing(request)
        body = parse_body(ex, framing, GENERATE_FIELDS)
        model = request.match_info["model"]
        if not self.vendor.serves(model):
            raise self.not_found(request, model)
        contents = check_contents(body.get("contents"), _version(request), framing)
        generation = _get(body, "generationConfig", "generation_config") or {}
        if not isinstance(generation, dict):
            kind = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig"
            raise _invalid_value("generation_config", kind, generation, framing)
        limit = _get(generation, "maxOutputTokens", "max_output_tokens")
        if limit is not None:
            limit = _int32(limit, "generation_config.max_output_tokens", framing)
        think = thinking(generation, self.vendor.thought_tokens, framing)
        cached_content = _get(body, "cachedContent", "cached_content")
        if cached_content is not None and not isinstance(cached_content, str):
            raise _invalid_value("cached_content", "TYPE_STRING", cached_content, framing)
        cached = self.vendor.cached_content_tokens if cached_content else 0
        system = _get(body, "systemInstruction", "system_instruction")
        prompt = textgen.estimate_tokens(contents, system, body.get("tools")) + cached
        calls = function_calls(body, contents)
        reply_tokens = self.config.reply_tokens
        if calls:
            return Plan(model, prompt, cached, _calls_tokens(calls), "STOP", think, False, calls)
        fixed = response_text(generation)
        if fixed is not None:
            # The whole answer, or cut at maxOutputTokens as the vendor cuts JSON (then unparseable).
            tokens = textgen.estimate_tokens(fixed)
            if limit is not None and 0 < limit < tokens:
                return Plan(model, prompt, cached, limit, "MAX_TOKENS", think, self.vendor.signs_text(model), (),
                            fixed[:limit * textgen.CHARS_PER_TOKEN])
            return Plan(model, prompt, cached, tokens, "STOP", think, self.vendor.signs_text(model), (), fixed)
        capped = limit is not None and 0 < limit < reply_tokens
        tokens = limit if capped and limit is not None else reply_tokens
        return Plan(model, prompt, cached, tokens, "MAX_TOKENS" if capped else "STOP", think,
                    self.vendor.signs_text(model), ())

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config = self.config
        delay = config.first_byte_delay + faults.extra_delay(fault)
        generation = (plan.candidates_tokens + plan.thinking.tokens) * config.seconds_per_token
        payload = errors.pretty(reply_body(plan, response_id(), thought_signature())) + b"\n"
        return await delivery.send_body(
            ex.request, 200, self.headers(errors.JSON_TYPE, delay + generation), payload,
            delay=delay + generation,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


class StreamGenerateContent(GenerateContent):
    """``POST /{version}/models/{model}:streamGenerateContent``: SSE with ``?alt=sse``, else a JSON array."""

    method = "streamGenerateContent"

    def framing(self, request: web.Request) -> Framing:
        return "sse" if request.query.get("alt") == "sse" else "array"

    def streams(self, ex: Exchange) -> bool:
        return True

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, request = self.config, ex.request
        framing = self.framing(request)
        delay = config.first_byte_delay + faults.extra_delay(fault)
        frames = reply_frames(plan, config.chunk_tokens, framing, response_id())
        error_after = faults.count(fault, "stream_error")
        if error_after is not None:
            frames = frames[:error_after]
            error = errors.stream_error_object()
            frames.append((sse_frame(error) if framing == "sse" else array_frame(error, not frames) + ARRAY_END, 0))
        elif framing == "array":
            frames.append((ARRAY_END, 0))
        content_type = errors.SSE_TYPE if framing == "sse" else errors.JSON_TYPE
        return await delivery.send_stream(
            request, self.headers(content_type, delay, attachment=True), frames,
            delay=delay,
            seconds_per_token=config.seconds_per_token,
            disconnect_after=faults.count(fault, "disconnect"),
        )


class CountTokens(GeminiEndpoint):
    """``POST /{version}/models/{model}:countTokens`` (``contents`` or a whole ``generateContentRequest``):
    ``{"totalTokens": N, "promptTokensDetails": [...]}`` by the same estimate as replies; no faults."""

    method = "countTokens"
    faults = False

    def validate(self, ex: Exchange) -> tuple[int, int]:
        request = ex.request
        framing = self.framing(request)
        body = parse_body(ex, framing, COUNT_FIELDS)
        model = request.match_info["model"]
        if not self.vendor.serves(model):
            raise self.not_found(request, model)
        inner = _get(body, "generateContentRequest", "generate_content_request")
        source = inner if isinstance(inner, dict) else body
        contents = source.get("contents")
        if contents is not None:
            check_contents(contents, _version(request), framing)
        cached = self.vendor.cached_content_tokens if _get(source, "cachedContent", "cached_content") else 0
        system = _get(source, "systemInstruction", "system_instruction")
        return textgen.estimate_tokens(contents, system, source.get("tools")) + cached, cached

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        total, cached = plan
        body: dict[str, Any] = {"totalTokens": total}
        if cached:
            body["cachedContentTokenCount"] = cached
        body["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": total}]
        if cached:
            body["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        payload = errors.pretty(body) + b"\n"
        return web.Response(headers=self.headers(errors.JSON_TYPE, 0), body=payload)


def model_entry(name: str) -> dict[str, Any]:
    """One ``Model`` resource as ``models.list`` and ``models.get`` print it."""
    version, display, input_limit, output_limit, thinks = KNOWN_MODELS.get(
        name, ("001", name.replace("-", " ").title(), 1_048_576, 65_536, True))
    entry: dict[str, Any] = {
        "name": f"models/{name}",
        "version": version,
        "displayName": display,
        "description": f"{display}, served by the Switchboard simulator.",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": list(_GENERATION_METHODS),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64 if thinks else 40,
        "maxTemperature": 2,
    }
    if thinks:
        entry["thinking"] = True
    return entry


def page_token(name: str) -> str:
    """``nextPageToken``: base64url of a serialized message naming the page's last model."""
    resource = f"models/{name}".encode()[:127]
    return base64.urlsafe_b64encode(bytes([0x0A, len(resource)]) + resource).rstrip(b"=").decode()


def _page_start(token: str, names: list[str]) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 2 or raw[0] != 0x0A or raw[1] != len(raw) - 2:
        return None
    last = raw[2:].decode("utf-8", "replace").removeprefix("models/")
    return names.index(last) + 1 if last in names else None


class ListModels(GeminiEndpoint):
    """``GET /{version}/models?pageSize=&pageToken=``: the listed models, ``nextPageToken`` while more remain."""

    method = "list"
    faults = False

    def validate(self, ex: Exchange) -> tuple[int, int]:
        query = ex.request.query
        names = list(self.vendor.listed_models)
        raw_size = query.get("pageSize", query.get("page_size"))
        size = DEFAULT_PAGE_SIZE if raw_size is None else _int32(raw_size, "page_size", "json")
        size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
        token = query.get("pageToken", query.get("page_token", ""))
        start = _page_start(token, names) if token else 0
        if start is None:
            raise errors.invalid_argument("Invalid page token.", "json")
        return start, size

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        start, size = plan
        names = list(self.vendor.listed_models)
        page = names[start: start + size]
        body: dict[str, Any] = {"models": [model_entry(name) for name in page]}
        if start + size < len(names) and page:
            body["nextPageToken"] = page_token(page[-1])
        payload = errors.pretty(body) + b"\n"
        return web.Response(headers=self.headers(errors.JSON_TYPE, 0), body=payload)


class GetModel(GeminiEndpoint):
    """``GET /{version}/models/{model}``: one listed or served model, else 404 NOT_FOUND."""

    faults = False

    def validate(self, ex: Exchange) -> str:
        model = ex.request.match_info["model"]
        if model not in self.vendor.listed_models and not self.vendor.serves(model):
            raise self.not_found(ex.request, model)
        return model

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        payload = errors.pretty(model_entry(plan)) + b"\n"
        return web.Response(headers=self.headers(errors.JSON_TYPE, 0), body=payload)


def routes(config: SimulatorConfig) -> list[Route]:
    generate, stream, count = GenerateContent(config), StreamGenerateContent(config), CountTokens(config)
    listing, get = ListModels(config), GetModel(config)
    model = "{model:[^/:]+}"
    out = []
    for version in VERSIONS:
        out += [
            Route("POST", f"/{version}/models/{model}:generateContent", generate),
            Route("POST", f"/{version}/models/{model}:streamGenerateContent", stream),
            Route("POST", f"/{version}/models/{model}:countTokens", count),
            Route("GET", f"/{version}/models", listing),
            Route("GET", f"/{version}/models/{model}", get),
        ]
    return out
