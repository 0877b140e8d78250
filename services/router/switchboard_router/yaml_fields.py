"""Typed reading of one YAML mapping, every problem recorded against its field path.

The rule this module owns: a message names the account and the field and says what
was expected, and never shows a value that may be a credential. Secrets are read
through `secret`, which takes the value inline (`name`) or from the environment
(`name_env`, the variable read at load time); a variable that is unset or empty is
not a problem of the file but of that account, collected in `unset_env`.
"""

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

# Longest timeout an account may set (a day): past it a number is a typo.
MAX_TIMEOUT_SECONDS = 86_400


def kind(value: object) -> str:
    """The YAML-ish name of a value's type, for messages that must not show the value."""
    return "null" if value is None else type(value).__name__


class Findings:
    """What reading one account entry found: problems (file errors) and unset variables."""

    def __init__(self, where: str, environ: Mapping[str, str]) -> None:
        self.where = where
        self.environ = environ
        self.problems: list[str] = []
        # Account errors, not file errors: "environment variable X (field) is not set or empty".
        self.unset_env: list[str] = []


class Fields:
    """One mapping of an account entry (the entry itself, or a section such as `oauth`)."""

    def __init__(self, raw: Mapping[str, Any], findings: Findings, prefix: str = "") -> None:
        self.raw = raw
        self.findings = findings
        self.prefix = prefix

    @property
    def problem_count(self) -> int:
        return len(self.findings.problems)

    def add(self, field: str, message: str) -> None:
        self.findings.problems.append(f"{self.findings.where}: field '{self.prefix}{field}': {message}")

    def has(self, field: str) -> bool:
        return self.raw.get(field) is not None

    def check_known(self, known: Collection[str], hint: Mapping[str, str] | None = None) -> None:
        """Each field not in `known` is a problem (a typo must not silently change routing);
        `hint` may say instead where an unknown field belongs."""
        for name in sorted(str(k) for k in self.raw if k not in known):
            self.add(name, hint[name] if hint and name in hint else "unknown field")

    def string(self, field: str, *, required: bool = False) -> str | None:
        """A non-empty string, stripped; None when absent (a problem if `required`) or wrong."""
        value = self.raw.get(field)
        if value is None:
            if required:
                self.add(field, "is required")
            return None
        if not isinstance(value, str):
            self.add(field, f"expected a string, got {kind(value)}")
            return None
        if not value.strip():
            self.add(field, "must not be empty")
            return None
        return value.strip()

    def choice(self, field: str, options: Iterable[str], default: str) -> str:
        options = tuple(options)
        value = self.string(field)
        if value is None:
            return default
        if value not in options:
            self.add(field, f"expected one of {', '.join(options)}, got {value!r}")
            return default
        return value

    def boolean(self, field: str, default: bool) -> bool:
        value = self.raw.get(field, default)
        if not isinstance(value, bool):
            self.add(field, f"expected true or false, got {kind(value)}")
            return default
        return value

    def integer(self, field: str, default: int, low: int, high: int, what: str) -> int:
        value = self.raw.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(field, f"expected {what}, got {value!r}")
            return default
        return value

    def seconds(self, field: str) -> float:
        """A positive duration up to a day; 0.0 when absent (null too): the edge's own setting applies."""
        value = self.raw.get(field)
        if value is None:
            return 0.0
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or not 0 < value <= MAX_TIMEOUT_SECONDS):
            self.add(field, f"expected a positive number up to {MAX_TIMEOUT_SECONDS}, got {value!r}")
            return 0.0
        return float(value)

    def string_list(self, field: str, default: list[str]) -> list[str]:
        value = self.raw.get(field, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.add(field, "expected a list of non-empty strings")
            return default
        return [v.strip() for v in value]

    def string_map(self, field: str) -> dict[str, str]:
        """A mapping of non-empty strings to non-empty strings, in file order. Messages name the
        entry's key, never its value (header values may be secrets)."""
        value = self.raw.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(field, f"expected a mapping of string to string, got {kind(value)}")
            return {}
        result: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key or not isinstance(item, str) or not item:
                self.add(field, f"entry {_shown_key(key)}: key and value must be non-empty strings")
            else:
                result[key] = item
        return result

    def section(self, field: str, known: Collection[str], *, required: bool) -> "Fields | None":
        """A nested mapping (e.g. `oauth`), read with field paths `field.name`."""
        value = self.raw.get(field)
        if value is None:
            if required:
                self.add(field, "is required")
            return None
        if not isinstance(value, dict):
            self.add(field, f"expected a mapping, got {kind(value)}")
            return None
        section = Fields(value, self.findings, f"{self.prefix}{field}.")
        section.check_known(known)
        return section

    def secret(self, field: str, *, required: bool) -> str | None:
        """A credential: `field` inline or `field_env` naming an environment variable.

        None when neither is given (a problem if `required`); "" when the variable is unset or
        empty (recorded in `unset_env`: the account loads in error, the file stays valid).
        """
        env_field = f"{field}_env"
        inline, from_env = self.has(field), self.has(env_field)
        if inline and from_env:
            self.add(field, f"set only one of '{field}' and '{env_field}'")
            return None
        if inline:
            return self.string(field, required=True)
        if from_env:
            variable = self.string(env_field, required=True)
            if variable is None:
                return None
            value = self.findings.environ.get(variable, "").strip()
            if not value:
                self.findings.unset_env.append(
                    f"environment variable {variable} ({self.prefix}{env_field}) is not set or empty")
            return value
        if required:
            self.add(field, f"one of '{field}' or '{env_field}' is required")
        return None


def secret_names(*fields: str) -> frozenset[str]:
    """The YAML keys a secret field may use: `name` and `name_env`."""
    return frozenset(name for field in fields for name in (field, f"{field}_env"))


def _shown_key(key: object) -> str:
    return repr(key) if isinstance(key, str) and len(key) <= 100 else kind(key)
