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
    anthropic:                 # POST /v1/messages
      keys: [sk-sim-anthropic] # [--anthropic-key KEY, repeatable, adds] valid x-api-key / Bearer values;
                               #   the list replaces the default, so keep sk-sim-anthropic to add keys
      accept_any_key: false    # [--accept-any-key, both vendors] any non-empty key is valid
      models: ["claude-*"]     # [--anthropic-model GLOB, repeatable, replaces] served models
      key_faults:              # [--key-fault KEY=SPEC, repeatable, both vendors] a key that always
        sk-sim-broken: "500"   #   suffers a fault; such keys are valid keys. These three are the defaults.
        sk-sim-ratelimited: "429"
        sk-sim-overloaded: overloaded
      sse_padding: true        # pad data objects with spaces before "}" as the vendor does
    openai:                    # POST /v1/chat/completions
      keys: [sk-sim-openai]    # [--openai-key KEY, repeatable, adds] valid Bearer values
      accept_any_key: false
      models: ["gpt-*", "o*"]  # [--openai-model GLOB, repeatable, replaces]
      key_faults: {...}        # same defaults as anthropic
      max_tokens_unsupported: ["o1*", "o3*", "o4*", "gpt-5*"]  # models that reject max_tokens (400
                               #   unsupported_parameter, as the vendor does for reasoning models)

Fault specs are described in `faults`.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import faults
from .faults import Fault

CONFIG_VARIABLE = "SWITCHBOARD_SIMULATOR_CONFIG"
DEFAULT_KEY_FAULTS = {"sk-sim-broken": "500", "sk-sim-ratelimited": "429", "sk-sim-overloaded": "overloaded"}


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


def _model_matcher(patterns: Sequence[str]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class VendorConfig:
    """Who may call one vendor API, which models it serves, and which keys are faulty."""

    keys: frozenset[str]
    models: tuple[str, ...]
    accept_any_key: bool = False
    key_faults: Mapping[str, Fault] = field(default_factory=dict)
    sse_padding: bool = True
    max_tokens_unsupported: tuple[str, ...] = ()
    _models: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _no_max_tokens: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_models", _model_matcher(self.models))
        object.__setattr__(self, "_no_max_tokens", _model_matcher(self.max_tokens_unsupported))

    def key_ok(self, key: str) -> bool:
        return bool(key) and (self.accept_any_key or key in self.keys or key in self.key_faults)

    def serves(self, model: str) -> bool:
        return self._models.match(model) is not None

    def rejects_max_tokens(self, model: str) -> bool:
        return self._no_max_tokens.match(model) is not None


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator reads at start; immutable afterwards."""

    anthropic: VendorConfig
    openai: VendorConfig
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


_VENDOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "anthropic": {"keys": ["sk-sim-anthropic"], "models": ["claude-*"], "key_faults": DEFAULT_KEY_FAULTS},
    "openai": {
        "keys": ["sk-sim-openai"],
        "models": ["gpt-*", "o*"],
        "key_faults": DEFAULT_KEY_FAULTS,
        "max_tokens_unsupported": ["o1*", "o3*", "o4*", "gpt-5*"],
    },
}
_VENDOR_KEYS = {"keys", "accept_any_key", "models", "key_faults", "sse_padding", "max_tokens_unsupported"}


def _mapping(where: str, value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return value


def _strings(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return value


def _is_spec(value: Any) -> bool:
    # YAML reads a bare status such as 500 as a number.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _specs(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(_is_spec(item) for item in value):
        raise ConfigError(f"{where}: expected a list of fault specs, got {value!r}")
    return [str(item) for item in value]


def _fault(spec: Any, where: str) -> Fault:
    if not _is_spec(spec):
        raise ConfigError(f"{where}: expected a fault spec, got {spec!r}")
    try:
        return faults.parse(str(spec))
    except faults.FaultSpecError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


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
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(name: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name}: expected {_EXPECTED[kind]}, got {value!r}")
    return value


def _vendor(name: str, value: Any) -> VendorConfig:
    raw = _mapping(name, value)
    unknown = set(raw) - _VENDOR_KEYS
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(f'{name}.{key}' for key in unknown)}")
    merged = {**_VENDOR_DEFAULTS[name], **raw}
    raw_faults = _mapping(f"{name}.key_faults", merged["key_faults"])
    key_faults = {str(k): _fault(v, f"{name}.key_faults.{k}") for k, v in raw_faults.items()}
    return VendorConfig(
        keys=frozenset(_strings(f"{name}.keys", merged["keys"])),
        models=tuple(_strings(f"{name}.models", merged["models"])),
        accept_any_key=_scalar(f"{name}.accept_any_key", merged.get("accept_any_key", False), bool),
        key_faults=key_faults,
        sse_padding=_scalar(f"{name}.sse_padding", merged.get("sse_padding", True), bool),
        max_tokens_unsupported=tuple(_strings(f"{name}.max_tokens_unsupported",
                                              merged.get("max_tokens_unsupported"))),
    )


def from_mapping(raw: Mapping[str, Any]) -> SimulatorConfig:
    """Builds the config from a YAML-shaped mapping; unknown keys and wrong types are an error naming the key."""
    unknown = set(raw) - set(_SCALARS) - {"faults", "anthropic", "openai"}
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(map(str, unknown))}")
    top: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _SCALARS:
            top[name] = _scalar(name, value, _SCALARS[name])
    top["faults"] = tuple(_fault(spec, "faults") for spec in _specs("faults", raw.get("faults")))
    config = SimulatorConfig(
        anthropic=_vendor("anthropic", raw.get("anthropic")),
        openai=_vendor("openai", raw.get("openai")),
        **top,
    )
    if config.reply_tokens < 1 or config.chunk_tokens < 1:
        raise ConfigError("reply_tokens and chunk_tokens must be at least 1")
    if config.latency_ms < 0 or config.tokens_per_second < 0:
        raise ConfigError("latency_ms and tokens_per_second must not be negative")
    return config


_EPILOG = """fault specs are NAME[:ARG][@RATE]: a status 400-599 (429:SECONDS sets retry-after), rate_limit,
server_error, overloaded (Anthropic 529, OpenAI 503), disconnect[:EVENTS], stream_error[:DELTAS], hang,
slow[:MS]. A request picks its fault from the x-simulator-fault header, then its key, then --fault."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m switchboard_simulator",
        description="Switchboard upstream simulator: the Anthropic Messages and OpenAI Chat Completions "
        "APIs, offline. YAML keys are documented in switchboard_simulator/config.py.",
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
    add("--key-fault", action="append", metavar="KEY=SPEC", help="a key that always suffers SPEC (both APIs)")
    add("--anthropic-key", action="append", metavar="KEY", help="another valid Anthropic key")
    add("--openai-key", action="append", metavar="KEY", help="another valid OpenAI key")
    add("--anthropic-model", action="append", metavar="GLOB", help="served models (replaces claude-*)")
    add("--openai-model", action="append", metavar="GLOB", help="served models (replaces gpt-*, o*)")
    add("--accept-any-key", action="store_true", default=None, help="any non-empty key is valid")
    add("--no-fault-header", dest="fault_header", action="store_false", default=None,
        help="ignore the x-simulator-fault request header")
    add("--no-record", dest="record_requests", action="store_false", default=None,
        help="do not keep received requests for /_simulator/requests")
    add("--record-limit", type=int, help="how many received requests to keep (default 1000)")
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
        raw["faults"] = [*_specs("faults", raw.get("faults")), *args.fault]
    for vendor in ("anthropic", "openai"):
        section = dict(_mapping(vendor, raw.get(vendor)))
        defaults = _VENDOR_DEFAULTS[vendor]
        extra_keys = getattr(args, f"{vendor}_key")
        if extra_keys:
            base_keys = _strings(f"{vendor}.keys", section["keys"]) if "keys" in section else defaults["keys"]
            section["keys"] = [*base_keys, *extra_keys]
        models = getattr(args, f"{vendor}_model")
        if models:
            section["models"] = models
        if args.accept_any_key:
            section["accept_any_key"] = True
        for item in args.key_fault or ():
            key, sep, spec = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--key-fault {item!r}: expected KEY=SPEC")
            base_faults = (_mapping(f"{vendor}.key_faults", section["key_faults"]) if "key_faults" in section
                           else defaults["key_faults"])
            section["key_faults"] = {**base_faults, key: spec}
        raw[vendor] = section
    return from_mapping(raw)
