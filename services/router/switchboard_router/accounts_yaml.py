"""The accounts YAML format: parse and validate it into `Account`s (no file I/O here).

The only module that imports `yaml`. Format::

    accounts:
      - name: sim-claude            # required; [A-Za-z0-9._-], unique per platform;
                                    #   the account id is "<platform>/<name>"
        platform: claude-console    # required; one of switchboard_common.platforms.ALL
        base_url: http://127.0.0.1:8090   # required; http(s), trailing "/" dropped
        api_key: sk-...             # the credential inline, or
        api_key_env: ANTHROPIC_KEY  #   the name of an environment variable read at load
                                    #   time (exactly one of the two)
        priority: 50                # integer, lower wins; default 50
        enabled: true               # default true
        models: ["claude-*"]        # glob patterns served (fnmatchcase); default ["*"]
        model_mapping:              # requested model (exact, or glob) -> upstream model;
          claude-sonnet-4: claude-sonnet-4-20250514   # exact keys win, then globs in order
        headers: {}                 # extra upstream headers, string -> string
        groups: []                  # key groups that may use it; empty = default pool
        timeout_seconds: 600        # upstream timeout in seconds, 0 < t <= 86400; omit it
                                    #   to use the edge's SWITCHBOARD_EDGE_UPSTREAM_TIMEOUT_SECONDS

Unknown fields are errors (a typo must not silently change routing), and so is an
empty document: a file caught half-written must not empty the pool. Every problem
is reported at once, each naming the account and the field. An `api_key_env`
naming an unset variable is not a file error: that account loads in the error
state (`Account.error`) and the rest of the pool stays usable. Credential values
never appear in any message. Write the file atomically (write, then rename).
"""

import re
from collections.abc import Mapping
from typing import Any

import yaml

from switchboard_common import platforms
from switchboard_router.accounts import DEFAULT_PRIORITY, Account
from switchboard_router.errors import AccountsInvalid

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_INT32 = (-(2**31), 2**31 - 1)
_MAX_TIMEOUT_SECONDS = 86_400
_FIELDS = frozenset({
    "name", "platform", "base_url", "api_key", "api_key_env", "priority", "enabled",
    "models", "model_mapping", "headers", "groups", "timeout_seconds",
})


class _Problems:
    """Collects messages for one account, each prefixed with where it is."""

    def __init__(self, where: str, out: list[str]) -> None:
        self.where, self.out, self.count = where, out, 0

    def add(self, field: str, message: str) -> None:
        self.out.append(f"{self.where}: field '{field}': {message}")
        self.count += 1


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _string(raw: Mapping[str, Any], field: str, p: _Problems, *, required: bool) -> str | None:
    value = raw.get(field)
    if value is None:
        if required:
            p.add(field, "is required")
        return None
    if not isinstance(value, str):
        p.add(field, f"expected a string, got {_kind(value)}")
        return None
    if not value.strip():
        p.add(field, "must not be empty")
        return None
    return value.strip()


def _string_list(raw: Mapping[str, Any], field: str, p: _Problems, default: list[str]) -> list[str]:
    value = raw.get(field, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        p.add(field, "expected a list of non-empty strings")
        return default
    return [v.strip() for v in value]


def _string_map(raw: Mapping[str, Any], field: str, p: _Problems) -> dict[str, str]:
    value = raw.get(field, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add(field, f"expected a mapping of string to string, got {_kind(value)}")
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not isinstance(item, str) or not item:
            p.add(field, f"entry {key!r}: key and value must be non-empty strings")
        else:
            result[key] = item
    return result


def _account(
    index: int, raw: object, environ: Mapping[str, str], problems: list[str]
) -> Account | None:
    if not isinstance(raw, dict):
        problems.append(f"accounts[{index}]: expected a mapping, got {_kind(raw)}")
        return None
    label = raw.get("name")
    if not isinstance(label, str) or not label.strip():
        label = "?"
    p = _Problems(f"accounts[{index}] ({label})", problems)
    for unknown in sorted(str(k) for k in raw if k not in _FIELDS):
        p.add(unknown, "unknown field")

    name = _string(raw, "name", p, required=True)
    if name is not None and not _NAME.fullmatch(name):
        p.add("name", "may hold only letters, digits, '.', '_' and '-', starting with a letter or digit")
    platform = _string(raw, "platform", p, required=True)
    if platform is not None and not platforms.is_platform(platform):
        p.add("platform", f"unknown platform {platform!r}; expected one of {', '.join(platforms.ALL)}")
    base_url = _string(raw, "base_url", p, required=True)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        p.add("base_url", "must start with http:// or https://")

    api_key, error = "", None
    inline, from_env = raw.get("api_key") is not None, raw.get("api_key_env") is not None
    if inline and from_env:
        p.add("api_key", "set only one of 'api_key' and 'api_key_env'")
    elif inline:
        api_key = _string(raw, "api_key", p, required=True) or ""
    elif from_env:
        variable = _string(raw, "api_key_env", p, required=True)
        if variable is not None:
            api_key = environ.get(variable, "").strip()
            if not api_key:
                error = f"environment variable {variable} (api_key_env) is not set or empty"
    else:
        p.add("api_key", "one of 'api_key' or 'api_key_env' is required")

    priority = raw.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or not _INT32[0] <= priority <= _INT32[1]:
        p.add("priority", f"expected a 32-bit integer, got {priority!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        p.add("enabled", f"expected true or false, got {_kind(enabled)}")
    models = _string_list(raw, "models", p, ["*"])
    if not models:
        p.add("models", "must not be empty (omit it to serve every model)")
    model_mapping = _string_map(raw, "model_mapping", p)
    headers = _string_map(raw, "headers", p)
    groups = _string_list(raw, "groups", p, [])
    timeout = raw.get("timeout_seconds")  # None: unset, the edge's own timeout applies
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= _MAX_TIMEOUT_SECONDS
    ):
        p.add("timeout_seconds", f"expected a positive number up to {_MAX_TIMEOUT_SECONDS}, got {timeout!r}")

    if p.count or name is None or platform is None or base_url is None:
        return None
    return Account(
        name=name,
        platform=platform,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        priority=priority,
        enabled=enabled,
        models=tuple(models),
        model_mapping=model_mapping,
        headers=headers,
        groups=frozenset(groups),
        timeout_seconds=float(timeout or 0),
        error=error,
    )


def parse_accounts(text: str, *, source: str, environ: Mapping[str, str]) -> list[Account]:
    """Accounts in file order, or `AccountsInvalid` listing every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AccountsInvalid(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(document, dict) or "accounts" not in document:
        raise AccountsInvalid(source, ["expected a mapping with an 'accounts' list at the top level"])
    extra = sorted(str(k) for k in document if k != "accounts")
    if extra:
        raise AccountsInvalid(source, [f"unknown top-level field(s): {', '.join(extra)}"])
    entries = document["accounts"]
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise AccountsInvalid(source, [f"'accounts' must be a list, got {_kind(entries)}"])

    problems: list[str] = []
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        account = _account(index, raw, environ, problems)
        if account is None:
            continue
        if account.id in seen:
            problems.append(
                f"accounts[{index}] ({account.name}): field 'name': duplicate account id "
                f"{account.id!r} (first at accounts[{seen[account.id]}])"
            )
            continue
        seen[account.id] = index
        accounts.append(account)
    if problems:
        raise AccountsInvalid(source, problems)
    return accounts
