"""Simulator settings: built-in defaults, then a YAML file, then command-line flags.

The YAML file is the one named by ``--config``, else by the ``SWITCHBOARD_SIMULATOR_CONFIG`` variable
(this is how ``make run`` hands one over). It is checked strictly: an unknown key or a value of the
wrong type is refused with the key's name (``anthropic.keys: expected a list of strings``).

YAML keys (all optional; flags in brackets override them)::

    host: 127.0.0.1            # [--host] listen address
    port: 8090                 # [--port] 0 picks a free port; the real one is printed as
                               #   "SIMULATOR_READY http://HOST:PORT" once listening
    latency_ms: 0              # [--latency-ms] delay before the first byte of every generation
    tokens_per_second: 0       # [--tokens-per-second] stream pacing; 0 = as fast as possible.
                               #   A non-stream answer waits for the whole generation too.
    reply_tokens: 35           # [--reply-tokens] reply length in tokens (before max_tokens cuts it)
    chunk_tokens: 1            # [--chunk-tokens] tokens per streamed text delta
    fault_header: true         # [--no-fault-header] honour the x-simulator-fault request header
    faults: []                 # [--fault SPEC, repeatable] global faults, e.g. ["500@0.05", "slow:800@0.1"]
    record_requests: true      # [--no-record] keep the last requests for GET /_simulator/requests
    record_limit: 1000         # [--record-limit]
    anthropic:                 # POST /v1/messages, /v1/messages/count_tokens, /v1/oauth/token
      keys: [sk-sim-anthropic] # [--anthropic-key KEY, repeatable, adds] valid x-api-key / Bearer values;
                               #   the list replaces the default, so keep sk-sim-anthropic to add keys
      accept_any_key: false    # [--accept-any-key, every vendor] any non-empty key is valid
      models: ["claude-*"]     # [--anthropic-model GLOB, repeatable, replaces] served models
      key_faults:              # [--key-fault KEY=SPEC, repeatable, every vendor] a key that always
        sk-sim-broken: "500"   #   suffers a fault; such keys are valid keys. These three are the defaults.
        sk-sim-ratelimited: "429"
        sk-sim-overloaded: overloaded
      sse_padding: true        # pad data objects with spaces before "}" as the vendor does
      oauth_refresh_tokens: [sim-refresh-token]  # [--anthropic-refresh-token TOKEN, adds] refresh tokens
                               #   the token endpoint accepts at start; each works once (they rotate)
      oauth_access_tokens: []  # [--anthropic-access-token TOKEN, adds] Bearer access tokens valid from
                               #   start for one lifetime (with anthropic-beta: oauth-2025-04-20)
      oauth_token_lifetime_seconds: 28800  # [--oauth-token-lifetime] expires_in of issued access tokens
      oauth_client_ids: []     # client_id values the token endpoint accepts; empty = any
      oauth_token_fault: null  # [--oauth-token-fault SPEC] a fault every token refresh suffers, e.g.
                               #   "400" (invalid_grant) or "500"; global faults never reach it
      organizations: {}        # [--anthropic-organization KEY=ORG, repeatable] API keys in organisations
                               #   of their own; thinking signatures one makes the others refuse (OAuth and
                               #   unlisted keys share one organisation)
    openai:                    # POST /v1/chat/completions
      keys: [sk-sim-openai]    # [--openai-key KEY, repeatable, adds] valid Bearer values
      accept_any_key: false
      models: ["gpt-*", "o*"]  # [--openai-model GLOB, repeatable, replaces]
      key_faults: {...}        # same defaults as anthropic
      max_tokens_unsupported: ["o1*", "o3*", "o4*", "gpt-5*"]  # models that reject max_tokens (400
                               #   unsupported_parameter, as the vendor does for reasoning models)
    azure_openai:              # POST /openai/deployments/{deployment}/chat/completions?api-version=…
                               #   and POST /openai/v1/chat/completions (deployment in "model")
      keys: [sk-sim-azure]     # [--azure-key KEY, repeatable, adds] valid api-key / Bearer values
      accept_any_key: false
      key_faults: {...}        # same defaults as anthropic
      deployments:             # [--azure-deployment NAME[=MODEL], repeatable, adds] deployment -> model;
        gpt-4o: gpt-4o         #   an unknown deployment is 404 DeploymentNotFound. Defaults: gpt-4o,
                               #   gpt-4o-mini, gpt-4.1, gpt-4.1-mini, o3-mini, gpt-5-nano, each to itself
      api_versions: ["20??-??-??", "20??-??-??-preview"]  # (as date globs) accepted api-version values
                               #   on the deployment path; the v1 path takes none, "preview" or "latest"
      max_tokens_unsupported: ["o1*", "o3*", "o4*", "gpt-5*"]  # by the deployment's model, as for openai
    bedrock:                   # POST /model/{modelId}/invoke and /model/{modelId}/invoke-with-response-stream
      keys: [sk-sim-bedrock]   # [--bedrock-key KEY, repeatable, adds] Bedrock API keys (Authorization: Bearer)
      accept_any_key: false    #   (also: any parsable SigV4 Authorization passes unchecked)
      models: ["anthropic.claude-*", "*.anthropic.claude-*"]  # [--bedrock-model GLOB, replaces] model ids
                               #   and inference profiles (an ARN is matched by its last path segment)
      key_faults: {...}        # same defaults as anthropic; keyed by API key or SigV4 access key id
      region: us-east-1        # [--bedrock-region] the region signatures must be scoped to
      credentials:             # [--bedrock-credential ACCESS_KEY_ID=SECRET, repeatable, adds] SigV4
        AKIASIMULATOR0000000: sim-bedrock-secret  # keys; a value may also be {secret_access_key: …,
                               #   session_token: …} for temporary credentials
      expired_session_tokens: []  # X-Amz-Security-Token values answered 403 ExpiredTokenException
      anthropic_versions: [bedrock-2023-05-31]  # accepted body anthropic_version values
      betas: [...]             # anthropic_beta flags Bedrock accepts (globs); others: "invalid beta flag"
    openai_responses:          # POST /v1/responses, /v1/responses/compact (Bearer; the openai keys work too)
      keys: [sk-sim-openai]    # [--openai-responses-key KEY, repeatable, adds] valid Bearer values
      accept_any_key: false
      models: ["gpt-5*", "codex-*", "o1*", "o3*", "o4-mini*", "gpt-4o*", "gpt-4.1*"]  # [--openai-responses-model
                               #   GLOB, repeatable, replaces]; others are 400 model_not_found
      key_faults: {...}        # same defaults as anthropic
      reasoning_models: ["o1*", "o3*", "o4*", "gpt-5*", "codex-*"]  # models that reason (reasoning_tokens,
                               #   reasoning items); others refuse reasoning.effort
      quota_exhausted_keys: [sk-sim-no-quota]  # valid keys that always answer 429 insufficient_quota
      organizations: {}        # [--openai-responses-organization KEY=ORG, repeatable] API keys in organisations
                               #   of their own; reasoning/compaction encrypted_content one makes the others
                               #   refuse (400 invalid_encrypted_content; unlisted keys share one organisation)
    codex:                     # ChatGPT/Codex backend: POST /backend-api/codex/responses, .../responses/compact,
                               #   and the sign-in token endpoint POST /oauth/token (auth.openai.com)
      keys: []                 # [--codex-key TOKEN, repeatable, adds] Bearer values valid forever (besides the
                               #   access tokens /oauth/token issues)
      accept_any_key: false    #   (then any Bearer and any chatgpt-account-id pass)
      models: ["gpt-5*", "codex-*"]  # [--codex-model GLOB, repeatable, replaces]
      key_faults: {...}        # same defaults as anthropic
      account_id: 5e1a7c3b-0000-4000-8000-00c0dec0de00  # chatgpt_account_id in issued tokens; requests must
                               #   send it as chatgpt-account-id
      plan_type: plus          # chatgpt_plan_type in the tokens, x-codex-plan-type, usage-limit plan_type
      oauth_refresh_tokens: [sim-codex-refresh-token]  # [--codex-refresh-token TOKEN, adds] accepted at start;
                               #   each works once (they rotate)
      oauth_token_lifetime_seconds: 864000  # [--codex-token-lifetime] expires_in of issued access tokens
      oauth_client_ids: [app_EMoamEEZ73f0CkXaXp7hrann]  # accepted client_id values (Codex CLI's); empty = any
      oauth_token_fault: null  # [--codex-oauth-token-fault SPEC] a fault every token refresh suffers
      primary_used_percent: 0  # [--codex-used-percent] x-codex-primary-used-percent; 100 = usage limit reached
      secondary_used_percent: 0  # the weekly window's; 100 = usage limit reached
      primary_window_minutes: 300
      secondary_window_minutes: 10080
      usage_limit_reached: false  # every request answers 429 usage_limit_reached (so does a 429 fault)
      unsupported_parameters: [max_output_tokens, temperature, top_p, ...]  # 400 "Unsupported parameter: NAME"
      organizations: {}        # [--codex-organization TOKEN_OR_ACCOUNT=ORG, repeatable] Bearer values or
                               #   chatgpt-account-id values in organisations of their own, as for
                               #   openai_responses (the others share one, not the API platform's)
    gemini:                    # POST /v1beta/models/{model}:generateContent, :streamGenerateContent (?alt=sse:
                               #   SSE, else a JSON array), :countTokens; GET /v1beta/models, /v1beta/models/{model};
                               #   the same under /v1
      keys: [AIzaSimulatorGemini00000000000000000000]  # [--gemini-key KEY, repeatable, adds] valid
                               #   x-goog-api-key / ?key= values
      accept_any_key: false
      models: ["gemini-*"]     # [--gemini-model GLOB, repeatable, replaces] served models
      key_faults: {...}        # same defaults as anthropic
      listed_models: [gemini-2.5-pro, gemini-2.5-flash, ...]  # what GET /models lists (paged)
      thought_tokens: 24       # thoughtsTokenCount when a request turns thinking on (thinkingConfig)
      cached_content_tokens: 1024  # cachedContentTokenCount when a request names cachedContent
      text_signature_models: ["gemini-3*"]  # models that put a thoughtSignature on their last text part

Fault specs are described in `faults`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import defaults
from .faults import Fault
from .settings import ConfigError, Field, Section, VendorConfig, fault, mapping, scalar, specs, strings
from .vendors import VENDORS
from .vendors.anthropic import AnthropicConfig
from .vendors.azure_openai import AzureOpenAIConfig
from .vendors.bedrock import BedrockConfig
from .vendors.codex import CodexConfig
from .vendors.gemini import GeminiConfig
from .vendors.openai import OpenAIConfig
from .vendors.openai_responses import ResponsesConfig

__all__ = ["CONFIG_VARIABLE", "ConfigError", "SimulatorConfig", "VendorConfig", "from_mapping", "load"]

CONFIG_VARIABLE = "SWITCHBOARD_SIMULATOR_CONFIG"
DEFAULT_KEY_FAULTS = defaults.KEY_FAULTS
SECTIONS: tuple[Section, ...] = tuple(vendor.section for vendor in VENDORS)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator reads at start; immutable afterwards. One attribute per vendor section
    (named as in `vendors.VENDORS`), then the settings shared by all vendors."""

    anthropic: AnthropicConfig
    openai: OpenAIConfig
    azure_openai: AzureOpenAIConfig
    bedrock: BedrockConfig
    openai_responses: ResponsesConfig
    codex: CodexConfig
    gemini: GeminiConfig
    host: str = "127.0.0.1"
    port: int = 8090
    latency_ms: float = 0.0
    tokens_per_second: float = 0.0
    reply_tokens: int = 35
    chunk_tokens: int = 1
    fault_header: bool = True
    faults: tuple[Fault, ...] = ()
    record_requests: bool = True
    record_limit: int = 1000

    @property
    def first_byte_delay(self) -> float:
        return self.latency_ms / 1000.0

    @property
    def seconds_per_token(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0

    def section(self, name: str) -> VendorConfig:
        """A vendor's settings by its section name."""
        value = getattr(self, name)
        assert isinstance(value, VendorConfig)
        return value


_SCALARS: dict[str, type] = {
    "host": str,
    "port": int,
    "latency_ms": float,
    "tokens_per_second": float,
    "reply_tokens": int,
    "chunk_tokens": int,
    "fault_header": bool,
    "record_requests": bool,
    "record_limit": int,
}


def from_mapping(raw: Mapping[str, Any]) -> SimulatorConfig:
    """Builds the config from a YAML-shaped mapping; unknown keys and wrong types are an error naming the key."""
    unknown = set(raw) - set(_SCALARS) - {"faults"} - {section.name for section in SECTIONS}
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(map(str, unknown))}")
    top: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _SCALARS:
            top[name] = scalar(_SCALARS[name])(name, value)
    top["faults"] = tuple(fault("faults", spec) for spec in specs("faults", raw.get("faults")))
    sections: dict[str, Any] = {section.name: section.parse(raw.get(section.name)) for section in SECTIONS}
    config = SimulatorConfig(**sections, **top)
    if config.reply_tokens < 1 or config.chunk_tokens < 1:
        raise ConfigError("reply_tokens and chunk_tokens must be at least 1")
    if config.latency_ms < 0 or config.tokens_per_second < 0:
        raise ConfigError("latency_ms and tokens_per_second must not be negative")
    return config


_EPILOG = """fault specs are NAME[:ARG][@RATE]: a status 400-599 (429:SECONDS sets retry-after), rate_limit,
server_error, overloaded (Anthropic 529, OpenAI/Azure/Bedrock/Gemini 503), disconnect[:EVENTS],
stream_error[:DELTAS], hang, slow[:MS]. A request picks its fault from the x-simulator-fault header,
then its key, then --fault."""


def _vendor_flags(p: argparse.ArgumentParser) -> None:
    for section in SECTIONS:
        for item in section.fields:
            if item.flag is None:
                continue
            if item.flag_mode in ("add", "replace", "pairs"):
                p.add_argument(item.flag, dest=item.dest, action="append", metavar=item.metavar, help=item.help)
            else:
                p.add_argument(item.flag, dest=item.dest, type=item.flag_type, metavar=item.metavar,
                               help=item.help)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m switchboard_simulator",
        description="Switchboard upstream simulator: the vendors' model APIs "
        f"({', '.join(section.name for section in SECTIONS)}), offline. "
        "YAML keys are documented in switchboard_simulator/config.py.",
        epilog=_EPILOG,
    )
    add = p.add_argument
    add("--config", type=Path, help=f"YAML file (default ${CONFIG_VARIABLE}; flags override it)")
    add("--host", help="listen address (default 127.0.0.1)")
    add("--port", type=int, help="listen port (default 8090; 0 = any free port, printed on stdout)")
    add("--latency-ms", type=float, help="delay before the first byte (default 0)")
    add("--tokens-per-second", type=float, help="generation speed; 0 = as fast as possible (default)")
    add("--reply-tokens", type=int, help="reply length in tokens (default 35)")
    add("--chunk-tokens", type=int, help="tokens per streamed delta (default 1)")
    add("--fault", action="append", metavar="SPEC", help="global fault, repeatable, e.g. 500@0.05")
    add("--key-fault", action="append", metavar="KEY=SPEC", help="a key that always suffers SPEC (every vendor)")
    add("--accept-any-key", action="store_true", default=None, help="any non-empty key is valid (every vendor)")
    add("--no-fault-header", dest="fault_header", action="store_false", default=None,
        help="ignore the x-simulator-fault request header")
    add("--no-record", dest="record_requests", action="store_false", default=None,
        help="do not keep received requests for /_simulator/requests")
    add("--record-limit", type=int, help="how many received requests to keep (default 1000)")
    _vendor_flags(p)
    return p


def read_file(path: Path, source: str) -> dict[str, Any]:
    """The settings mapping in a YAML file (not yet checked); `source` names it in errors."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it ({exc.strerror})") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level")
    try:
        from_mapping(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return loaded


def _pairs(flag: str, items: Sequence[str], *, bare: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (not sep and not bare):
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key] = value if sep else key
    return out


def _apply_flag(section: Section, item: Field, values: dict[str, Any], arg: Any) -> None:
    where = f"{section.name}.{item.name}"
    assert item.flag is not None
    if item.flag_mode == "add":
        base = strings(where, values[item.name]) if item.name in values else item.default
        values[item.name] = [*base, *arg]
    elif item.flag_mode == "pairs":
        base = mapping(where, values[item.name]) if item.name in values else item.default
        values[item.name] = {**base, **_pairs(item.flag, arg, bare=item.bare_pairs)}
    else:
        values[item.name] = arg


def _section_from_flags(section: Section, args: argparse.Namespace, raw: Any) -> dict[str, Any]:
    values = dict(mapping(section.name, raw))
    for item in section.fields:
        if item.flag is not None and getattr(args, item.dest) is not None:
            _apply_flag(section, item, values, getattr(args, item.dest))
    if args.accept_any_key and section.field("accept_any_key") is not None:
        values["accept_any_key"] = True
    key_faults = section.field("key_faults")
    for item in args.key_fault or ():
        key, sep, spec = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--key-fault {item!r}: expected KEY=SPEC")
        if key_faults is not None:
            base = (mapping(f"{section.name}.key_faults", values["key_faults"]) if "key_faults" in values
                    else key_faults.default)
            values["key_faults"] = {**base, key: spec}
    return values


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
    """Defaults, then the YAML file (``--config``, else ``$SWITCHBOARD_SIMULATOR_CONFIG``), then flags."""
    args = _parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if args.config is not None:
        raw = read_file(args.config, str(args.config))
    elif environ.get(CONFIG_VARIABLE):
        path = environ[CONFIG_VARIABLE]
        raw = read_file(Path(path), f"{CONFIG_VARIABLE}={path}")
    for name in _SCALARS:
        value = getattr(args, name)
        if value is not None:
            raw[name] = value
    if args.fault:
        raw["faults"] = [*specs("faults", raw.get("faults")), *args.fault]
    for section in SECTIONS:
        raw[section.name] = _section_from_flags(section, args, raw.get(section.name))
    return from_mapping(raw)
