"""How a vendor declares its config section: typed fields, their defaults, converters and flags.

Each vendor module owns one `Section` (its YAML key, its settings class, its fields); `config` builds
the YAML schema, the command-line flags and the defaults from the registry of sections, so adding a
vendor never touches `config`. Converters check strictly and name the offending key
(``anthropic.keys: expected a list of strings``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import defaults, faults
from .faults import Fault


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


Convert = Callable[[str, Any], Any]
FlagMode = Literal["add", "replace", "set", "pairs"]
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def model_matcher(patterns: Sequence[str]) -> re.Pattern[str]:
    """One regex for a list of glob patterns (never matches when the list is empty)."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def mapping(where: str, value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    return value


def strings(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return value


def string_map(where: str, value: Any) -> dict[str, str]:
    raw = mapping(where, value)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"{where}: expected a mapping of strings to strings, got {value!r}")
    return dict(raw)


def is_spec(value: Any) -> bool:
    # YAML reads a bare status such as 500 as a number.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def specs(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(is_spec(item) for item in value):
        raise ConfigError(f"{where}: expected a list of fault specs, got {value!r}")
    return [str(item) for item in value]


def fault(where: str, spec: Any) -> Fault:
    if not is_spec(spec):
        raise ConfigError(f"{where}: expected a fault spec, got {spec!r}")
    try:
        return faults.parse(str(spec))
    except faults.FaultSpecError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def optional_fault(where: str, spec: Any) -> Fault | None:
    return None if spec is None else fault(where, spec)


def fault_map(where: str, value: Any) -> dict[str, Fault]:
    return {str(k): fault(f"{where}.{k}", v) for k, v in mapping(where, value).items()}


def scalar(kind: type) -> Convert:
    def convert(where: str, value: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {_EXPECTED[kind]}, got {value!r}")
        return value

    return convert


def positive(kind: type) -> Convert:
    check = scalar(kind)

    def convert(where: str, value: Any) -> Any:
        number = check(where, value)
        if number <= 0:
            raise ConfigError(f"{where}: must be greater than 0, got {value!r}")
        return number

    return convert


def frozen_strings(where: str, value: Any) -> frozenset[str]:
    return frozenset(strings(where, value))


def string_tuple(where: str, value: Any) -> tuple[str, ...]:
    return tuple(strings(where, value))


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a vendor section. With `flag`, the command line can change it too:

    ``add`` appends to the list (the file's, else the default), ``replace`` sets the list,
    ``set`` sets a scalar of `flag_type`, ``pairs`` merges ``KEY=VALUE`` items into a mapping (with
    `bare_pairs`, a lone ``KEY`` maps to itself).
    """

    name: str
    convert: Convert
    default: Any
    flag: str | None = None
    flag_mode: FlagMode = "set"
    flag_type: type = str
    metavar: str | None = None
    help: str | None = None
    bare_pairs: bool = False

    @property
    def dest(self) -> str:
        assert self.flag is not None
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True, slots=True)
class VendorConfig:
    """What every vendor section has: who may call, which models it serves, which keys are faulty."""

    keys: frozenset[str]
    models: tuple[str, ...]
    accept_any_key: bool = False
    key_faults: Mapping[str, Fault] = field(default_factory=dict)
    _models: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_models", model_matcher(self.models))

    def key_ok(self, key: str) -> bool:
        return bool(key) and (self.accept_any_key or key in self.keys or key in self.key_faults)

    def serves(self, model: str) -> bool:
        return self._models.match(model) is not None


def common_fields(
    prefix: str, keys: Sequence[str], models: Sequence[str], *, what: str = "API key"
) -> tuple[Field, ...]:
    """keys, accept_any_key, models and key_faults, with the flags ``--PREFIX-key`` and ``--PREFIX-model``."""
    return (
        Field("keys", frozen_strings, list(keys), flag=f"--{prefix}-key", flag_mode="add", metavar="KEY",
              help=f"another valid {what}"),
        Field("accept_any_key", scalar(bool), False),
        Field("models", string_tuple, list(models), flag=f"--{prefix}-model", flag_mode="replace",
              metavar="GLOB", help=f"served models (replaces {', '.join(models)})"),
        Field("key_faults", fault_map, dict(defaults.KEY_FAULTS)),
    )


@dataclass(frozen=True, slots=True)
class Section:
    """A vendor's config section: its YAML key (also the `SimulatorConfig` attribute), the class its
    fields build, and the fields themselves."""

    name: str
    settings: type[VendorConfig]
    fields: tuple[Field, ...]

    def parse(self, value: Any) -> VendorConfig:
        raw = mapping(self.name, value)
        known = {f.name for f in self.fields}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(f'{self.name}.{key}' for key in unknown)}")
        values = {
            f.name: f.convert(f"{self.name}.{f.name}", raw[f.name] if f.name in raw else f.default)
            for f in self.fields
        }
        return self.settings(**values)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)
