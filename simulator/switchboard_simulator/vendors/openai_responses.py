"""The OpenAI Responses API as the vendor speaks it: ``POST /v1/responses`` and ``POST /v1/responses/compact``.

Authentication is the OpenAI API's (``Authorization: Bearer``, the keys of this section or of the
``openai`` section); errors use the OpenAI envelope from `openai_errors`. Shapes follow
vendor-recordings/openai-responses (the wire format itself is `responses_format`):

- validation errors are 2-space-indented ``invalid_request_error`` bodies with ``param`` and ``code``
  (``missing_required_parameter``, ``invalid_type``, ``decimal_below_min_value`` …); an unknown model is
  400 ``model_not_found`` ("The requested model 'x' does not exist."); a wrong key 401 ``invalid_api_key``
  printed the same way, with ``www-authenticate: Bearer realm="OpenAI API"``;
- keys in ``quota_exhausted_keys`` answer 429 ``insufficient_quota`` (a stream: 200 with
  response.created, response.in_progress, ``error``, ``response.failed``, as recorded);
- input may be a string or a list of items of any type (unknown types such as Codex's are accepted);
- ``reasoning`` and ``compaction`` items' ``encrypted_content`` is bound to the organisation that made it
  (``organizations`` maps API keys to organisations; unlisted keys share ``openai.ORGANIZATION``, which
  ``openai-organization`` names): another organisation's (or a forged one) is 400
  ``invalid_encrypted_content``, "The encrypted content gAAA...DQ== could not be verified. Reason:
  Encrypted content could not be decrypted or parsed." (for a compaction item with an id: "The encrypted
  content for item cmp_… could not be verified. Reason: …"), on ``/responses`` and ``/responses/compact``;
- ``prompt_cache_key`` turns on prefix caching (`responses_format.PromptCache`): the same key and a
  prefix seen before report ``cached_tokens``;
- ``stream_error`` sends N deltas, then ``error`` and ``response.failed``; ``max_output_tokens``
  reached ends with ``response.incomplete`` (reason ``max_output_tokens``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, ids, ratelimit
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..settings import (
    Field,
    Section,
    VendorConfig,
    common_fields,
    frozen_strings,
    model_matcher,
    string_map,
    string_tuple,
)
from . import responses_format as fmt
from . import responses_output as out
from .openai import ORGANIZATION, PROJECT, _invalid_type
from .openai_errors import BAD_JSON, NO_KEY, SERVER_ERROR, OpenAIError, fault_error, mask_key
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "openai_responses"
COMPACT_API = "openai_responses_compact"
MODELS = ["gpt-5*", "gpt-6*", "codex-*", "o1*", "o3*", "o4-mini*", "gpt-4o*", "gpt-4.1*"]
REASONING_MODELS = ["o1*", "o3*", "o4*", "gpt-5*", "gpt-6*", "codex-*"]
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
INSUFFICIENT_QUOTA = out.Failure("insufficient_quota", "insufficient_quota", QUOTA_MESSAGE)
SERVER_FAILURE = out.Failure("server_error", "server_error", SERVER_ERROR)
_KEY_HINT = "You can find your API key at https://platform.openai.com/account/api-keys."


@dataclass(frozen=True, slots=True)
class ResponsesConfig(VendorConfig):
    """The ``openai_responses`` section: the common keys, the reasoning models, the keys out of quota, the
    keys in organisations of their own."""

    reasoning_models: tuple[str, ...] = ()
    quota_exhausted_keys: frozenset[str] = frozenset()
    organizations: Mapping[str, str] = field(default_factory=dict)
    _reasoning: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super(ResponsesConfig, self).__post_init__()
        object.__setattr__(self, "_reasoning", model_matcher(self.reasoning_models))

    def reasons(self, model: str) -> bool:
        return self._reasoning.match(model) is not None

    def organization(self, key: str) -> str:
        """The organisation an admitted key belongs to (its encrypted content verifies for it alone)."""
        return self.organizations.get(key, ORGANIZATION)


SECTION = Section("openai_responses", ResponsesConfig, (
    *common_fields("openai-responses", [defaults.OPENAI_KEY], MODELS),
    Field("reasoning_models", string_tuple, REASONING_MODELS),
    Field("quota_exhausted_keys", frozen_strings, [defaults.OPENAI_NO_QUOTA_KEY]),
    Field("organizations", string_map, {}, flag="--openai-responses-organization", flag_mode="pairs",
          metavar="KEY=ORGANIZATION", help="an API key that belongs to its own organisation (encrypted reasoning "
          "and compaction content made for one is refused by the others)"),
))


class WrongKey(OpenAIError):
    """A wrong key, printed as the Responses recording has it (2-space indent, ``www-authenticate``)."""

    def __init__(self, key: str) -> None:
        super().__init__(401, f"Incorrect API key provided: {mask_key(key)}. {_KEY_HINT}", code="invalid_api_key")

    def parts(self) -> tuple[dict[str, str], bytes]:
        headers, body = super().parts()
        headers["www-authenticate"] = 'Bearer realm="OpenAI API"'
        return headers, body


def _missing(param: str) -> OpenAIError:
    return OpenAIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not _is_number(value):
        raise _invalid_type(name, "a number", value)
    shown = int(value) if value == int(value) else value
    if value < low:
        raise OpenAIError(400, f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but "
                               f"got {shown} instead.", param=name, code="decimal_below_min_value")
    if value > high:
        raise OpenAIError(400, f"Invalid '{name}': decimal above maximum value. Expected a value <= {high:g}, but "
                               f"got {shown} instead.", param=name, code="decimal_above_max_value")


def _check_input(body: dict[str, Any]) -> None:
    if "input" not in body:
        if not any(body.get(name) for name in ("previous_response_id", "prompt", "conversation")):
            raise _missing("input")
        return
    items = body["input"]
    if isinstance(items, str):
        return
    if not isinstance(items, list):
        raise _invalid_type("input", "one of a string or array of input items", items)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _invalid_type(f"input[{index}]", "an object", item)
        if "role" in item and item.get("type", "message") == "message" and "content" not in item:
            raise _missing(f"input[{index}].content")
        blob = item.get("encrypted_content")
        if item.get("type") in fmt.ENCRYPTED_ITEM_TYPES and blob is not None and not isinstance(blob, str):
            raise _invalid_type(f"input[{index}].encrypted_content", "a string", blob)


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _invalid_type("tools", "an array", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid_type(f"tools[{index}]", "an object", tool)
        if "type" not in tool:
            raise _missing(f"tools[{index}].type")
        if tool["type"] == "function" and not tool.get("name"):
            raise _missing(f"tools[{index}].name")


def _check_reasoning(body: dict[str, Any], reasons: bool) -> None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise _invalid_type("reasoning", "an object", reasoning)
    effort = reasoning.get("effort")
    if effort is not None and not reasons:
        raise OpenAIError(400, "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                          param="reasoning.effort", code="unsupported_parameter")
    if effort is not None and effort not in fmt.EFFORTS:
        supported = ", ".join(f"'{e}'" for e in fmt.EFFORTS[:-1]) + f", and '{fmt.EFFORTS[-1]}'"
        raise OpenAIError(400, f"Invalid value: '{effort}'. Supported values are: {supported}.",
                          param="reasoning.effort", code="invalid_value")


def check(body: Any, bad_json: str | None, vendor: ResponsesConfig) -> dict[str, Any]:
    """The vendor's 400 (or model_not_found) for the first problem in a Responses request body."""
    if bad_json is not None or not isinstance(body, dict):
        raise OpenAIError(400, BAD_JSON, legacy=True)
    if body.get("model") in (None, ""):
        raise _missing("model")
    if not isinstance(body["model"], str):
        raise _invalid_type("model", "a string", body["model"])
    _check_input(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    _check_range(body, "temperature", 0, 2)
    _check_range(body, "top_p", 0, 1)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise _invalid_type("max_output_tokens", "an integer", limit)
        if limit < 16:
            raise OpenAIError(400, "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                                   f"16, but got {limit} instead.", param="max_output_tokens",
                              code="integer_below_min_value")
    _check_tools(body)
    if not vendor.serves(body["model"]):
        raise OpenAIError(400, f"The requested model '{body['model']}' does not exist.", param="model",
                          code="model_not_found")
    _check_reasoning(body, vendor.reasons(body["model"]))
    return body


def encrypted_content_error(items: Any, organization: str) -> OpenAIError | None:
    """The vendor's 400 for a reasoning or compaction input item not encrypted for `organization`, or None."""
    problem = fmt.encrypted_content_problem(items, organization)
    return None if problem is None else OpenAIError(400, problem, code="invalid_encrypted_content")


def api_headers(stream: bool, processing_seconds: float, prompt_tokens: int,
                organization: str = ORGANIZATION) -> dict[str, str]:
    headers = {
        "Content-Type": out.SSE_TYPE if stream else "application/json",
        "x-request-id": ids.openai_request_id(),
        "openai-organization": organization,
        "openai-project": PROJECT,
        "openai-processing-ms": str(int(processing_seconds * 1000)),
        "openai-version": "2020-10-01",
        "X-Content-Type-Options": "nosniff",
    }
    ratelimit.openai(headers, prompt_tokens)
    return headers


def pretty(value: Any) -> bytes:
    """A JSON body as the vendor prints it: 2-space indentation, no trailing newline."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


class Responses(Endpoint):
    """``POST /v1/responses``. Order: auth, faults, JSON, validation, model."""

    api = API
    section = SECTION.name
    vendor: ResponsesConfig

    def __init__(self, config: SimulatorConfig, cache: fmt.PromptCache) -> None:
        super().__init__(config)
        self.cache = cache

    def admit(self, ex: Exchange) -> str:
        authorization = ex.request.headers.get("authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if not token:
            raise OpenAIError(401, NO_KEY, legacy=True)
        if not (self.vendor.key_ok(token) or self.config.openai.key_ok(token)
                or token in self.vendor.quota_exhausted_keys):
            raise WrongKey(token)
        return token

    def bad_request(self, message: str) -> Refusal:
        return OpenAIError(400, message, param=faults.FAULT_HEADER)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        body = ex.json_object
        return fault_error(fault, str(body.get("model")) if body is not None else "unknown")

    def verified(self, ex: Exchange, body: dict[str, Any]) -> dict[str, Any]:
        """`body`, unless an input item carries encrypted content another organisation made."""
        error = encrypted_content_error(body.get("input"), self.vendor.organization(ex.key))
        if error is not None:
            raise error
        return body

    def validate(self, ex: Exchange) -> dict[str, Any]:
        return self.verified(ex, check(ex.body, ex.bad_json, self.vendor))

    def plan(self, body: dict[str, Any], organization: str) -> fmt.Plan:
        cache_key = body.get("prompt_cache_key")
        cached = self.cache.lookup_and_store(cache_key, fmt.input_parts(body)) if isinstance(cache_key, str) else 0
        return fmt.make_plan(body, reply_tokens=self.config.reply_tokens, reasons=self.vendor.reasons(body["model"]),
                             organization=organization, cached_tokens=cached)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, request, body = self.config, ex.request, plan
        stream = body.get("stream") is True
        organization = self.vendor.organization(ex.key)
        the_plan = self.plan(body, organization)
        delay = config.first_byte_delay + faults.extra_delay(fault)
        if ex.key in self.vendor.quota_exhausted_keys:
            if not stream:
                error = OpenAIError(429, QUOTA_MESSAGE, "insufficient_quota", code="insufficient_quota")
                headers, payload = error.parts()
                return await delivery.send_body(request, 429, headers, payload, delay=delay)
            headers = api_headers(True, delay, the_plan.input_tokens, organization)
            return await delivery.send_stream(request, headers, out.failure_stream(the_plan, INSUFFICIENT_QUOTA),
                                              delay=delay)
        generation = 0.0 if stream else the_plan.output_tokens * config.seconds_per_token
        headers = api_headers(stream, delay + generation, the_plan.input_tokens, organization)
        options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        fail_after = faults.count(fault, "stream_error")
        final, frames = out.render(
            the_plan, stream=stream, chunk_tokens=config.chunk_tokens,
            obfuscate=options.get("include_obfuscation", True) is not False, billing=True,
            fail_after=fail_after, failure=SERVER_FAILURE if fail_after is not None else None,
        )
        if stream:
            return await delivery.send_stream(
                request, headers, frames, delay=delay, seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        return await delivery.send_body(
            request, 200, headers, pretty(final), delay=delay + generation,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


class Compact(Responses):
    """``POST /v1/responses/compact``: the user messages kept, the rest one opaque ``compaction`` item."""

    api = COMPACT_API

    def streams(self, ex: Exchange) -> bool:
        return False

    def validate(self, ex: Exchange) -> dict[str, Any]:
        body = ex.body
        if ex.bad_json is not None or not isinstance(body, dict):
            raise OpenAIError(400, BAD_JSON, legacy=True)
        if body.get("model") in (None, ""):
            raise _missing("model")
        if not isinstance(body["model"], str):
            raise _invalid_type("model", "a string", body["model"])
        items = body.get("input")
        if items is not None and not isinstance(items, str | list):
            raise _invalid_type("input", "one of a string or array of input items", items)
        if not self.vendor.serves(body["model"]):
            raise OpenAIError(400, f"The requested model '{body['model']}' does not exist.", param="model",
                              code="model_not_found")
        return self.verified(ex, body)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        started = time.monotonic()
        organization = self.vendor.organization(ex.key)
        answer = out.compaction_object(plan.get("input"), reasons=self.vendor.reasons(plan["model"]),
                                       organization=organization)
        delay = self.config.first_byte_delay + faults.extra_delay(fault)
        headers = api_headers(False, delay + time.monotonic() - started, answer["usage"]["input_tokens"],
                              organization)
        return await delivery.send_body(ex.request, 200, headers, pretty(answer), delay=delay,
                                        disconnect=faults.count(fault, "disconnect") is not None)


def routes(config: SimulatorConfig) -> list[Route]:
    cache = fmt.PromptCache()
    return [
        Route("POST", "/v1/responses", Responses(config, cache)),
        Route("POST", "/v1/responses/compact", Compact(config, cache)),
    ]
