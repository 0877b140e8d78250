"""Azure OpenAI chat completions: ``POST /openai/deployments/{deployment}/chat/completions?api-version=…``
and the v1 path ``POST /openai/v1/chat/completions`` (deployment named by the body's ``model``).

Auth: the ``api-key`` header, or ``Authorization: Bearer <key>``. Azure's own refusals are
``{"error":{"code":…,"message":…}}``: a missing ``api-version`` on the deployment path is 404
``Resource not found``, an unsupported one 400 ``API version not supported``, a missing or wrong key
401 ``Access denied due to …``, an unknown deployment 404 ``DeploymentNotFound`` exactly as recorded
(vendor-recordings/azure-openai/error-404-DeploymentNotFound.yaml). Parameter validation passes
through from the model service in OpenAI's envelope (`openai_errors`), as on OpenAI.

Replies are OpenAI chat completions as Azure shapes them (vendor-recordings/azure-openai): keys
sorted, ``prompt_filter_results`` and per-choice ``content_filter_results``, ``system_fingerprint``
null, compact JSON with a trailing newline; streams start with a ``prompt_filter_results`` chunk
(empty ``choices``, ``id``, ``model``, ``object``, ``created`` 0), carry ``content_filter_results`` on
every choice, and with ``include_usage`` end with a usage chunk that also has ``latency_checkpoint``.
Headers: ``apim-request-id``, ``x-request-id`` (UUIDs), ``x-ms-region``, ``x-ms-deployment-name``,
``x-ms-rai-invoked`` and Azure's ``x-ratelimit-*``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, ids, ratelimit, textgen
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..settings import (
    Field,
    Section,
    VendorConfig,
    fault_map,
    frozen_strings,
    model_matcher,
    scalar,
    string_map,
    string_tuple,
)
from ..sse import OPENAI_DONE, Frame, openai_frame
from . import openai
from .openai_errors import SERVER_ERROR, OpenAIError
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "azure_openai"
REGION = "East US 2"
SSE_TYPE = "text/event-stream; charset=utf-8"
V1_API_VERSIONS = ("preview", "latest")
NO_KEY = ("Access denied due to missing subscription key. Make sure to include subscription key when making "
          "requests to an API.")
WRONG_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
             "key for an active subscription and use a correct regional API endpoint for your resource.")
DEPLOYMENT_NOT_FOUND = (
    b'{\n  "error": {\n    "type": "invalid_request_error",\n    "code": "DeploymentNotFound",\n    "message": '
    b'"The API deployment for this resource does not exist. If you created the deployment within the last 5 '
    b'minutes, please wait a moment and try again."\n  }\n}'
)
RESOURCE_NOT_FOUND = b'{"error":{"code":"404","message": "Resource not found"}}'
_SAFE = {"filtered": False, "severity": "safe"}
_CHOICE_FILTERS = {
    "hate": _SAFE,
    "protected_material_code": {"filtered": False, "detected": False},
    "protected_material_text": {"filtered": False, "detected": False},
    "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE,
}
_PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": {
    "hate": _SAFE, "jailbreak": {"filtered": False, "detected": False}, "self_harm": _SAFE, "sexual": _SAFE,
    "violence": _SAFE,
}}]
_STREAM_PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": {
    "hate": _SAFE, "jailbreak": {"detected": False, "filtered": False}, "self_harm": _SAFE, "sexual": _SAFE,
    "violence": _SAFE,
}}]
_DATE = "20[0-9][0-9]-[01][0-9]-[0-3][0-9]"  # any well-formed api-version date
_TEXT_FILTERS = {"protected_material_text": {"detected": False, "filtered": False}}


@dataclass(frozen=True, slots=True)
class AzureOpenAIConfig(VendorConfig):
    """The ``azure_openai`` section: keys, deployments (name → model) and accepted api-versions."""

    models: tuple[str, ...] = ()
    deployments: Mapping[str, str] = field(default_factory=dict)
    api_versions: tuple[str, ...] = ()
    max_tokens_unsupported: tuple[str, ...] = ()
    _api_versions: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _no_max_tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super(AzureOpenAIConfig, self).__post_init__()
        object.__setattr__(self, "_api_versions", model_matcher(self.api_versions))
        object.__setattr__(self, "_no_max_tokens", model_matcher(self.max_tokens_unsupported))

    def api_version_ok(self, version: str) -> bool:
        return self._api_versions.match(version) is not None

    def rejects_max_tokens(self, model: str) -> bool:
        return self._no_max_tokens.match(model) is not None


SECTION = Section("azure_openai", AzureOpenAIConfig, (
    Field("keys", frozen_strings, [defaults.AZURE_OPENAI_KEY], flag="--azure-key", flag_mode="add",
          metavar="KEY", help="another valid Azure OpenAI key (api-key header or Bearer)"),
    Field("accept_any_key", scalar(bool), False),
    Field("key_faults", fault_map, dict(defaults.KEY_FAULTS)),
    Field("deployments", string_map, dict(defaults.AZURE_OPENAI_DEPLOYMENTS), flag="--azure-deployment",
          flag_mode="pairs", bare_pairs=True, metavar="NAME[=MODEL]", help="another deployment and its model"),
    Field("api_versions", string_tuple, [_DATE, f"{_DATE}-preview"]),
    Field("max_tokens_unsupported", string_tuple, openai.REASONING_MODELS),
))


class AzureError(Refusal):
    """Azure's own error envelope (gateway layer), or one of its recorded bodies verbatim."""

    def __init__(self, status: int, code: str, message: str, *, body: bytes | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.body = status, code, message, body
        self.retry_after = retry_after

    def parts(self) -> tuple[dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/json",
            "apim-request-id": ids.request_uuid(),
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
            "x-content-type-options": "nosniff",
            "x-ms-region": REGION,
        }
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
            headers["retry-after-ms"] = str(self.retry_after * 1000)
            ratelimit.azure(headers, 0, retry_after=self.retry_after)
        body = self.body if self.body is not None else orjson.dumps(
            {"error": {"code": self.code, "message": self.message}})
        return headers, body


def deployment_not_found() -> AzureError:
    return AzureError(404, "DeploymentNotFound", "deployment not found", body=DEPLOYMENT_NOT_FOUND)


def fault_error(fault: Fault, api_version: str) -> Refusal:
    status = fault.status if fault.kind == "status" and fault.status else 503
    if status == 401:
        return AzureError(401, "401", WRONG_KEY)
    if status == 404:
        return deployment_not_found()
    if status == 429:
        seconds = fault.retry_after
        message = (f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {api_version} "
                   f"have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
                   f"{seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
                   "further increase the default rate limit.")
        return AzureError(429, "429", message, retry_after=seconds)
    if status == 503:
        return AzureError(503, "ServiceUnavailable",
                          "The service is temporarily unable to process your request. Please try again later.")
    if status >= 500:
        return OpenAIError(status, SERVER_ERROR, "server_error", legacy=True)
    return AzureError(status, "BadRequest", "Invalid request.")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": 0,
                                      "rejected_prediction_tokens": 0},
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(completion_id: str, created: int, model: str, text: str, finish_reason: str,
                    prompt_tokens: int, completion_tokens: int) -> bytes:
    """The non-stream completion as Azure prints it: sorted keys, compact, a trailing newline."""
    body = {
        "choices": [{"content_filter_results": _CHOICE_FILTERS, "finish_reason": finish_reason, "index": 0,
                     "logprobs": None, "message": {"annotations": [], "content": text, "refusal": None,
                                                   "role": "assistant"}}],
        "created": created, "id": completion_id, "model": model, "object": "chat.completion",
        "prompt_filter_results": _PROMPT_FILTERS, "system_fingerprint": None,
        "usage": _usage(prompt_tokens, completion_tokens),
    }
    return orjson.dumps(body) + b"\n"


def stream_frames(
    completion_id: str, created: int, model: str, prompt_tokens: int, completion_tokens: int,
    finish_reason: str, *, chunk_tokens: int = 1, include_usage: bool = False, obfuscate: bool = True,
    error_after: int | None = None,
) -> list[Frame]:
    """The ``data:`` lines of one streamed reply, Azure's way; `error_after` as for OpenAI."""
    frames: list[Frame] = [(openai_frame(orjson.dumps({
        "choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": _STREAM_PROMPT_FILTERS,
    })), 0)]

    def chunk(choices: list[dict[str, Any]], tokens: int = 0, *, last: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"choices": choices, "created": created, "id": completion_id, "model": model,
                                "object": "chat.completion.chunk", "service_tier": "default",
                                "system_fingerprint": None}
        if obfuscate:
            data["obfuscation"] = ids.obfuscation(len(frames)).decode()
        if include_usage:
            data["usage"] = None
        data.update(last or {})
        frames.append((openai_frame(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)), tokens))

    def choice(filters: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"content_filter_results": filters, "delta": delta, "finish_reason": finish, "index": 0,
                 "logprobs": None}]

    chunk(choice({}, {"content": "", "refusal": None, "role": "assistant"}))
    deltas = textgen.chunks(completion_tokens, chunk_tokens)
    if error_after is not None:
        deltas = deltas[:error_after]
    for text_json, count in deltas:
        chunk(choice(_TEXT_FILTERS, {"content": orjson.loads(text_json)}), count)
    if error_after is not None:
        error = {"error": {"message": SERVER_ERROR, "type": "server_error", "param": None, "code": None}}
        frames.append((openai_frame(orjson.dumps(error)), 0))
        return frames
    chunk(choice({}, {}, finish_reason))
    if include_usage:
        latency = {"engine_tbt_ms": 10, "engine_ttft_ms": 80, "engine_ttlt_ms": 320, "pre_inference_ms": 82,
                   "service_tbt_ms": 10, "service_ttft_ms": 664, "service_ttlt_ms": 886,
                   "total_duration_ms": 811, "user_visible_ttft_ms": 582}
        chunk([], last={"latency_checkpoint": latency, "usage": _usage(prompt_tokens, completion_tokens)})
    frames.append((OPENAI_DONE, 0))
    return frames


@dataclass(frozen=True, slots=True)
class _Plan:
    deployment: str
    model: str
    body: dict[str, Any]
    limit: int | None
    api_version: str


class ChatCompletions(Endpoint):
    """One of the two chat completion paths: `v1` names the deployment in the body, else in the path."""

    api = API
    section = SECTION.name
    vendor: AzureOpenAIConfig

    def __init__(self, config: SimulatorConfig, *, v1: bool) -> None:
        super().__init__(config)
        self.v1 = v1

    def _api_version(self, request: web.Request) -> str:
        return request.query.get("api-version", "v1" if self.v1 else "")

    def admit(self, ex: Exchange) -> str:
        request = ex.request
        version = request.query.get("api-version")
        if version is None and not self.v1:
            raise AzureError(404, "404", "Resource not found", body=RESOURCE_NOT_FOUND)
        if version is not None and not (version in V1_API_VERSIONS if self.v1 else self.vendor.api_version_ok(version)):
            raise AzureError(400, "BadRequest", "API version not supported")
        key = request.headers.get("api-key", "").strip()
        if not key:
            authorization = request.headers.get("authorization", "")
            key = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        if not key:
            raise AzureError(401, "401", NO_KEY)
        if not self.vendor.key_ok(key):
            raise AzureError(401, "401", WRONG_KEY)
        return key

    def bad_request(self, message: str) -> Refusal:
        return OpenAIError(400, message, param=faults.FAULT_HEADER)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        return fault_error(fault, self._api_version(ex.request))

    def validate(self, ex: Exchange) -> _Plan:
        rejects = self.vendor.rejects_max_tokens
        if self.v1:
            body = ex.json_object
            deployment = body.get("model") if body is not None else None
            if not isinstance(deployment, str) or not deployment:
                openai.validate(ex.body, ex.bad_json, rejects)  # raises the vendor's error for this body
                raise deployment_not_found()
        else:
            deployment = ex.request.match_info["deployment"]
        model = self.vendor.deployments.get(deployment)
        if model is None:
            raise deployment_not_found()
        limit = openai.validate(ex.body, ex.bad_json, rejects, model=model)
        return _Plan(deployment, model, ex.body, limit, self._api_version(ex.request))

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, body = self.config, plan.body
        stream = body.get("stream") is True
        limit = plan.limit
        completion_tokens = config.reply_tokens if limit is None else min(config.reply_tokens, limit)
        finish_reason = "length" if limit is not None and limit < config.reply_tokens else "stop"
        prompt_tokens = textgen.estimate_tokens(body["messages"], body.get("tools"))
        completion_id, created = ids.openai_completion_id(), int(time.time())
        delay = config.first_byte_delay + faults.extra_delay(fault)
        headers = {
            "Content-Type": SSE_TYPE if stream else "application/json",
            "apim-request-id": ids.request_uuid(),
            "azureml-model-session": "d001-20260101000000",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
            "x-accel-buffering": "no",
            "x-content-type-options": "nosniff",
            "x-ms-deployment-name": plan.deployment,
            "x-ms-rai-invoked": "true",
            "x-ms-region": REGION,
            "x-request-id": ids.request_uuid(),
        }
        ratelimit.azure(headers, prompt_tokens, stream=stream)
        if stream:
            headers.update({"azureai-fe-is-streaming": "True", "skip-error-remapping": "true",
                            "x-ms-is-spilled-over": "false", "x-ms-served-model": plan.model,
                            "x-ratelimit-abusepenalty-active": "False", "x-ratelimit-key": plan.deployment})
            options = openai.stream_options(body)
            frames = stream_frames(
                completion_id, created, plan.model, prompt_tokens, completion_tokens, finish_reason,
                chunk_tokens=config.chunk_tokens,
                include_usage=options.get("include_usage") is True,
                obfuscate=options.get("include_obfuscation", True) is not False,
                error_after=faults.count(fault, "stream_error"),
            )
            return await delivery.send_stream(
                ex.request, headers, frames, delay=delay, seconds_per_token=config.seconds_per_token,
                disconnect_after=faults.count(fault, "disconnect"),
            )
        text = textgen.reply(completion_tokens).text
        payload = completion_body(completion_id, created, plan.model, text, finish_reason, prompt_tokens,
                                  completion_tokens)
        return await delivery.send_body(
            ex.request, 200, headers, payload,
            delay=delay + completion_tokens * config.seconds_per_token,
            disconnect=faults.count(fault, "disconnect") is not None,
        )


def routes(config: SimulatorConfig) -> list[Route]:
    return [
        Route("POST", "/openai/deployments/{deployment}/chat/completions", ChatCompletions(config, v1=False)),
        Route("POST", "/openai/v1/chat/completions", ChatCompletions(config, v1=True)),
    ]
