"""The ChatGPT/Codex backend (chatgpt.com) as Codex CLI meets it when signed in with ChatGPT:
``POST /backend-api/codex/responses``, ``POST /backend-api/codex/responses/compact`` and the sign-in
token endpoint ``POST /oauth/token`` (in `codex_oauth`).

The replies are the Responses wire format (`responses_format`); what differs is the gate in front:

- ``Authorization: Bearer <access token>`` issued by the token endpoint (or one of ``keys``), and
  ``chatgpt-account-id`` naming the token's account. An unknown token is 401 ``{"detail": "Could not
  parse your authentication token. Please try signing in again."}``; an expired one 401
  ``{"error": {"message": "Provided authentication token is expired. Please try signing in again.",
  "type": null, "code": "token_expired", "param": null}, "status": 401}``; a missing or foreign account
  header 403 ``{"detail": "You do not have access to this account."}`` (no recording of that one);
- the backend's own requirements, each a 400 ``{"detail": …}``, in this order: ``Unsupported parameter:
  <name>`` (``unsupported_parameters``), ``Instructions are required``, ``Store must be set to false``,
  ``Stream must be set to true``, ``Input must be a list``, ``The '<model>' model is not supported when
  using Codex with a ChatGPT account.``;
- encrypted content (``reasoning`` and ``compaction`` input items, on both paths) is bound to the caller's
  organisation, as on the API (`openai_responses`): ``organizations`` maps a Bearer value (a static key
  or an access token) or a ``chatgpt-account-id`` to an organisation, the Bearer value first; every other
  caller shares ``ORGANIZATION`` (which the API platform's organisations are not). Content made for
  another organisation, or forged, is 400 ``invalid_encrypted_content`` in the OpenAI envelope (2-space
  indented): "The encrypted content gAAA...DQ== could not be verified. Reason: Encrypted content could not
  be decrypted or parsed." (for a compaction item with an id: "The encrypted content for item cmp_… …");
- usage windows: every answer carries ``x-codex-*`` headers (plan type, active limit, primary 300-minute
  and secondary 10080-minute windows with used percent, window minutes, reset-after seconds and reset-at,
  and the credits headers, booleans as ``True``/``False`` as the backend prints them). When a window is
  used up (``usage_limit_reached``, or a used percent of 100), or a 429 fault is injected, the answer is
  429 ``{"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
  "plan_type": …, "resets_at": <unix>, "eligible_promo": null, "resets_in_seconds": N}}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import defaults, delivery, faults, ids
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..settings import (
    Field,
    Section,
    common_fields,
    frozen_strings,
    optional_fault,
    positive,
    scalar,
    string_map,
    string_tuple,
)
from . import responses_format as fmt
from . import responses_output as out
from .codex_oauth import CodexTokens, TokenEndpoint
from .oauth_grant import GrantConfig
from .openai_errors import SERVER_ERROR, fault_error
from .openai_responses import encrypted_content_error
from .registry import Route

if TYPE_CHECKING:
    from ..config import SimulatorConfig

API = "codex_responses"
COMPACT_API = "codex_responses_compact"
MODELS = ["gpt-5*", "gpt-6*", "codex-*"]  # Codex CLI 0.169 defaults to gpt-6.1-sol
#: Parameters of the public API the backend refuses by name (what clients have reported it refuses).
UNSUPPORTED = ["max_output_tokens", "temperature", "top_p", "frequency_penalty", "presence_penalty", "seed",
               "metadata", "top_logprobs", "truncation", "user", "response_format", "messages"]
BAD_TOKEN = "Could not parse your authentication token. Please try signing in again."
EXPIRED = "Provided authentication token is expired. Please try signing in again."
NO_ACCESS = "You do not have access to this account."
USAGE_LIMIT = "The usage limit has been reached"
#: Whom the backend's encrypted content is bound to when ``organizations`` names neither the caller's Bearer
#: value nor its account: not the API platform's default organisation, so neither accepts the other's.
ORGANIZATION = "chatgpt-simulator"


@dataclass(frozen=True, slots=True)
class CodexConfig(GrantConfig):
    """The ``codex`` section: the account, its sign-in tokens, its usage windows, the refused parameters,
    the callers in organisations of their own."""

    account_id: str = defaults.CODEX_ACCOUNT_ID
    plan_type: str = defaults.CODEX_PLAN_TYPE
    oauth_refresh_tokens: frozenset[str] = frozenset()
    oauth_token_lifetime_seconds: float = float(defaults.CODEX_OAUTH_TOKEN_LIFETIME_SECONDS)
    primary_used_percent: float = 0.0
    secondary_used_percent: float = 0.0
    primary_window_minutes: int = 300
    secondary_window_minutes: int = 10080
    usage_limit_reached: bool = False
    unsupported_parameters: tuple[str, ...] = ()
    organizations: Mapping[str, str] = field(default_factory=dict)

    def organization(self, token: str, account: str) -> str:
        """The organisation of an admitted caller: its Bearer value's, else its account's, else the default."""
        return self.organizations.get(token) or self.organizations.get(account) or ORGANIZATION


SECTION = Section("codex", CodexConfig, (
    *common_fields("codex", [], MODELS, what="access token (never expires)"),
    Field("account_id", scalar(str), defaults.CODEX_ACCOUNT_ID),
    Field("plan_type", scalar(str), defaults.CODEX_PLAN_TYPE),
    Field("oauth_refresh_tokens", frozen_strings, [defaults.CODEX_OAUTH_REFRESH_TOKEN],
          flag="--codex-refresh-token", flag_mode="add", metavar="TOKEN",
          help="another ChatGPT refresh token the /oauth/token endpoint accepts (once: tokens rotate)"),
    Field("oauth_token_lifetime_seconds", positive(float), float(defaults.CODEX_OAUTH_TOKEN_LIFETIME_SECONDS),
          flag="--codex-token-lifetime", flag_type=float, metavar="SECONDS",
          help=f"lifetime of ChatGPT access tokens (default {defaults.CODEX_OAUTH_TOKEN_LIFETIME_SECONDS})"),
    Field("oauth_client_ids", frozen_strings, [defaults.CODEX_OAUTH_CLIENT_ID]),
    Field("oauth_token_fault", optional_fault, None, flag="--codex-oauth-token-fault", metavar="SPEC",
          help="a fault every ChatGPT token refresh suffers, e.g. 401 (token_expired) or 500"),
    Field("primary_used_percent", scalar(float), 0.0, flag="--codex-used-percent", flag_type=float,
          metavar="PERCENT", help="used share of the 5-hour window; 100 = usage limit reached"),
    Field("secondary_used_percent", scalar(float), 0.0),
    Field("primary_window_minutes", positive(int), 300),
    Field("secondary_window_minutes", positive(int), 10080),
    Field("usage_limit_reached", scalar(bool), False),
    Field("unsupported_parameters", string_tuple, UNSUPPORTED),
    Field("organizations", string_map, {}, flag="--codex-organization", flag_mode="pairs",
          metavar="TOKEN_OR_ACCOUNT=ORGANIZATION", help="a Bearer token or chatgpt-account-id that belongs to its "
          "own organisation (encrypted reasoning and compaction content made for one is refused by the others)"),
))


def _percent(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Window:
    used: float
    minutes: int
    reset_at: int
    reset_after: int


def _window(used: float, minutes: int, now: int) -> Window:
    length = minutes * 60
    reset_at = (now // length + 1) * length
    return Window(min(100.0, max(0.0, used)), minutes, reset_at, reset_at - now)


class Usage:
    """The account's two usage windows now, as headers and as the usage-limit answer."""

    def __init__(self, vendor: CodexConfig, exhausted: bool = False) -> None:
        now = int(time.time())
        self.vendor = vendor
        self.primary = _window(100.0 if exhausted else vendor.primary_used_percent, vendor.primary_window_minutes,
                               now)
        self.secondary = _window(vendor.secondary_used_percent, vendor.secondary_window_minutes, now)

    @property
    def reached(self) -> bool:
        return self.vendor.usage_limit_reached or self.primary.used >= 100 or self.secondary.used >= 100

    def headers(self) -> dict[str, str]:
        p, s = self.primary, self.secondary
        return {
            "x-codex-active-limit": "codex",
            "x-codex-plan-type": self.vendor.plan_type,
            "x-codex-primary-used-percent": _percent(100.0 if self.vendor.usage_limit_reached else p.used),
            "x-codex-secondary-used-percent": _percent(s.used),
            "x-codex-primary-window-minutes": str(p.minutes),
            "x-codex-primary-over-secondary-limit-percent": "0",
            "x-codex-secondary-window-minutes": str(s.minutes),
            "x-codex-primary-reset-after-seconds": str(p.reset_after),
            "x-codex-secondary-reset-after-seconds": str(s.reset_after),
            "x-codex-primary-reset-at": str(p.reset_at),
            "x-codex-secondary-reset-at": str(s.reset_at),
            "x-codex-credits-has-credits": "False",
            "x-codex-credits-balance": "0",
            "x-codex-credits-unlimited": "False",
            "x-oai-request-id": ids.request_uuid(),
        }

    def limit_error(self) -> CodexError:
        window = self.secondary if self.secondary.used >= 100 and self.primary.used < 100 else self.primary
        error = {"type": "usage_limit_reached", "message": USAGE_LIMIT, "plan_type": self.vendor.plan_type,
                 "resets_at": window.reset_at, "eligible_promo": None, "resets_in_seconds": window.reset_after}
        return CodexError(429, {"error": error}, self.headers())


class CodexError(Refusal):
    """A backend answer: a JSON body (``{"detail": …}`` for its own checks) plus the usage headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str], *, indent: bool = False) -> None:
        super().__init__(str(body))
        self.status, self.body, self.headers, self.indent = status, body, dict(headers), indent

    def parts(self) -> tuple[dict[str, str], bytes]:
        body = orjson.dumps(self.body, option=orjson.OPT_INDENT_2 if self.indent else 0)
        return {"Content-Type": "application/json", **self.headers}, body


class Wrapped(Refusal):
    """Another vendor error (the OpenAI envelope) with the backend's usage headers added."""

    def __init__(self, inner: Refusal, headers: Mapping[str, str]) -> None:
        super().__init__(str(inner))
        self.inner, self.status, self.headers = inner, inner.status, dict(headers)

    def parts(self) -> tuple[dict[str, str], bytes]:
        headers, body = self.inner.parts()
        return {**headers, **self.headers}, body


class CodexResponses(Endpoint):
    """``POST /backend-api/codex/responses``. Order: token, account, usage limit, faults, requirements."""

    api = API
    section = SECTION.name
    vendor: CodexConfig

    def __init__(self, config: SimulatorConfig, tokens: CodexTokens, cache: fmt.PromptCache) -> None:
        super().__init__(config)
        self.tokens, self.cache = tokens, cache

    def detail(self, status: int, text: str) -> CodexError:
        return CodexError(status, {"detail": text}, Usage(self.vendor).headers())

    def admit(self, ex: Exchange) -> str:
        headers = ex.request.headers
        authorization = headers.get("authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        account = headers.get("chatgpt-account-id", "").strip()
        if token and self.vendor.key_ok(token):
            owner: str | None = None if self.vendor.accept_any_key else self.vendor.account_id
        else:
            state, owner = self.tokens.access(token) if token else ("unknown", None)
            if state == "unknown":
                raise self.detail(401, BAD_TOKEN)
            if state == "expired":
                error = {"message": EXPIRED, "type": None, "code": "token_expired", "param": None}
                raise CodexError(401, {"error": error, "status": 401}, Usage(self.vendor).headers(), indent=True)
        if not account or (owner is not None and account != owner):
            raise self.detail(403, NO_ACCESS)
        usage = Usage(self.vendor)
        if usage.reached:
            raise usage.limit_error()
        return token

    def streams(self, ex: Exchange) -> bool:
        return True

    def bad_request(self, message: str) -> Refusal:
        return self.detail(400, message)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        if fault.kind == "status" and fault.status == 429:
            return Usage(self.vendor, exhausted=True).limit_error()
        body = ex.json_object
        return Wrapped(fault_error(fault, str(body.get("model")) if body else "unknown"), Usage(self.vendor).headers())

    def _body(self, ex: Exchange) -> dict[str, Any]:
        if ex.bad_json is not None or not isinstance(ex.body, dict):
            raise self.detail(400, "Request body is not valid JSON")
        body: dict[str, Any] = ex.body
        refused = set(self.vendor.unsupported_parameters)
        unsupported = next((name for name in body if name in refused), None)
        if unsupported is not None:
            raise self.detail(400, f"Unsupported parameter: {unsupported}")
        return body

    def _model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str) or not self.vendor.serves(model):
            raise self.detail(400, f"The '{model}' model is not supported when using Codex with a ChatGPT account.")

    def organization(self, ex: Exchange) -> str:
        return self.vendor.organization(ex.key, ex.request.headers.get("chatgpt-account-id", "").strip())

    def _verified(self, ex: Exchange, body: dict[str, Any]) -> dict[str, Any]:
        error = encrypted_content_error(body["input"], self.organization(ex))
        if error is not None:
            raise Wrapped(error, Usage(self.vendor).headers())
        return body

    def validate(self, ex: Exchange) -> dict[str, Any]:
        body = self._body(ex)
        instructions = body.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            raise self.detail(400, "Instructions are required")
        if body.get("store") is not False:
            raise self.detail(400, "Store must be set to false")
        if body.get("stream") is not True:
            raise self.detail(400, "Stream must be set to true")
        if not isinstance(body.get("input"), list):
            raise self.detail(400, "Input must be a list")
        self._model(body)
        return self._verified(ex, body)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        config, body = self.config, plan
        cache_key = body.get("prompt_cache_key")
        cached = self.cache.lookup_and_store(cache_key, fmt.input_parts(body)) if isinstance(cache_key, str) else 0
        the_plan = fmt.make_plan(body, reply_tokens=config.reply_tokens, reasons=True,
                                 organization=self.organization(ex), cached_tokens=cached)
        fail_after = faults.count(fault, "stream_error")
        failure = out.Failure("server_error", "server_error", SERVER_ERROR) if fail_after is not None else None
        _, frames = out.render(the_plan, stream=True, chunk_tokens=config.chunk_tokens, fail_after=fail_after,
                               failure=failure)
        headers = {"Content-Type": "text/event-stream", **Usage(self.vendor).headers()}
        return await delivery.send_stream(
            ex.request, headers, frames, delay=config.first_byte_delay + faults.extra_delay(fault),
            seconds_per_token=config.seconds_per_token, disconnect_after=faults.count(fault, "disconnect"),
        )


class CodexCompact(CodexResponses):
    """``POST /backend-api/codex/responses/compact``: what Codex asks for when its context fills up."""

    api = COMPACT_API

    def streams(self, ex: Exchange) -> bool:
        return False

    def validate(self, ex: Exchange) -> dict[str, Any]:
        body = self._body(ex)
        if not isinstance(body.get("input"), list):
            raise self.detail(400, "Input must be a list")
        self._model(body)
        return self._verified(ex, body)

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        answer = out.compaction_object(plan["input"], reasons=True, organization=self.organization(ex))
        headers = {"Content-Type": "application/json", **Usage(self.vendor).headers()}
        return await delivery.send_body(
            ex.request, 200, headers, orjson.dumps(answer, option=orjson.OPT_INDENT_2),
            delay=self.config.first_byte_delay + faults.extra_delay(fault),
            disconnect=faults.count(fault, "disconnect") is not None,
        )


def routes(config: SimulatorConfig) -> list[Route]:
    vendor = config.section(SECTION.name)
    assert isinstance(vendor, CodexConfig)
    tokens, cache = CodexTokens(vendor), fmt.PromptCache()
    return [
        Route("POST", "/backend-api/codex/responses", CodexResponses(config, tokens, cache)),
        Route("POST", "/backend-api/codex/responses/compact", CodexCompact(config, tokens, cache)),
        Route("POST", "/oauth/token", TokenEndpoint(config, tokens)),
    ]
