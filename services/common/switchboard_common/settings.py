"""Service settings come from environment variables, read once at start.

Each service declares a frozen dataclass; `from_env` fills it from
`SWITCHBOARD_<SERVICE>_<FIELD>` variables, converting by the field's type.
"""

import dataclasses
import os
import typing
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(raw: str, kind: Any, name: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw


def from_env(cls: type[T], prefix: str, environ: typing.Mapping[str, str] | None = None) -> T:
    """Builds `cls` from `<prefix><FIELD>` variables; unset fields keep their defaults."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"{prefix}{field.name.upper()}"
        if name in env:
            values[field.name] = _convert(env[name], hints[field.name], name)
    return cls(**values)
