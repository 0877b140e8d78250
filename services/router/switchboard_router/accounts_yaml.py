"""The accounts YAML format: parse and validate it into `Account`s (no file I/O here).

The only module that imports `yaml`. Fields every account has::

    accounts:
      - name: team-claude           # required; [A-Za-z0-9._-], unique per platform;
                                    #   the account id is "<platform>/<name>"
        platform: claude-console    # required; one of switchboard_common.platforms.ALL
        base_url: https://api.anthropic.com   # http(s), trailing "/" dropped; defaults to the
                                    #   vendor's own where it has one (platform_fields)
        priority: 50                # integer, lower wins; default 50
        weight: 1                   # 1..1000: share of new work among equal priority and load; default 1
        max_concurrency: 0          # requests at once, 0..100000; 0 (default): no limit
        enabled: true               # default true
        schedulable: true           # false: no new conversations, bound ones stay (draining); default true
        models: ["claude-*"]        # glob patterns served (fnmatchcase); default ["*"]
        model_mapping:              # requested model (exact, or glob) -> upstream model;
          claude-sonnet-4: claude-sonnet-4-20250514   # exact keys win, then globs in order
        headers: {}                 # extra upstream headers, name -> value
        groups: []                  # key groups that may use it; empty = default pool
        timeout_seconds: 600        # longest upstream silence, 0 < t <= 86400; omitted: the
                                    #   edge's SWITCHBOARD_EDGE_UPSTREAM_TIMEOUT_SECONDS
        connect_timeout_seconds: 10 # connecting upstream, same range; omitted: the edge's
                                    #   SWITCHBOARD_EDGE_UPSTREAM_CONNECT_TIMEOUT_SECONDS
        proxy_url: socks5h://proxy:1080   # http, https, socks5 or socks5h URL with a port; omitted: direct

Then the platform's own fields (credentials, region, Azure settings, …), read and
checked by the platform's reader in `platform_fields`. Every secret (and the proxy
URL, which may hold a password) is given inline (`api_key: sk-…`) or as the name of
an environment variable read at load time (`api_key_env: ANTHROPIC_KEY`), never both.

Unknown fields are errors (a typo must not silently change routing), and so is an
empty document: a file caught half-written must not empty the pool. Every problem
is reported at once, each naming the account and the field. A `*_env` naming an
unset variable is not a file error: that account loads in the error state
(`Account.error`) and the rest of the pool stays usable. Credential values never
appear in any message (YAML syntax errors are reported by line and column, without
the line's text). Write the file atomically (write, then rename).
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from switchboard_common import platforms
from switchboard_router.accounts import DEFAULT_PRIORITY, DEFAULT_WEIGHT, Account
from switchboard_router.errors import AccountsInvalid
from switchboard_router.platform_fields import PLATFORMS, PlatformFields, misplaced
from switchboard_router.yaml_fields import Fields, Findings, kind, secret_names

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_INT32 = (-(2**31), 2**31 - 1)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
# Headers that frame the request: the edge owns them.
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
COMMON_FIELDS = frozenset({
    "name", "platform", "base_url", "priority", "weight", "max_concurrency", "enabled", "schedulable", "models",
    "model_mapping", "headers", "groups", "timeout_seconds", "connect_timeout_seconds",
}) | secret_names("proxy_url")


def _base_url(fields: Fields, platform: str, own: PlatformFields) -> str | None:
    value = fields.string("base_url")
    if value is None:
        if own.default_base_url is None and not fields.has("base_url"):
            fields.add("base_url", f"is required for platform {platform}")
        return own.default_base_url
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not value.startswith(("http://", "https://")):
        fields.add("base_url", "must start with http:// or https://")
    elif not parts.hostname or parts.query or parts.fragment:
        fields.add("base_url", "must be a URL with a host and no query or fragment")
    elif platform == platforms.AZURE_OPENAI and parts.path.rstrip("/").endswith("/openai"):
        fields.add("base_url", "give the resource endpoint without '/openai' (e.g. https://myres.openai.azure.com)")
    return value.rstrip("/")


def _proxy_url(fields: Fields) -> str:
    value = fields.secret("proxy_url", required=False)
    if not value:
        return ""
    try:  # messages never show the URL: it may carry a password
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() not in _PROXY_SCHEMES:
        fields.add("proxy_url", f"expected a URL with scheme {', '.join(_PROXY_SCHEMES)}")
    elif not parts.hostname or port is None:
        fields.add("proxy_url", "expected a URL with a host and a port, e.g. socks5h://proxy.internal:1080")
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        fields.add("proxy_url", "expected scheme://[user:password@]host:port with nothing after the port")
    return value


def _headers(fields: Fields) -> dict[str, str]:
    headers = fields.string_map("headers")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            fields.add("headers", f"entry {name[:100]!r}: not a valid header name")
        elif name.lower() in _FRAMING_HEADERS:
            fields.add("headers", f"entry {name!r}: set by the edge, not by an account")
        elif not _HEADER_VALUE.fullmatch(value):
            fields.add("headers", f"entry {name!r}: the value holds control characters")
    return headers


def _account(index: int, raw: object, environ: Mapping[str, str], problems: list[str]) -> Account | None:
    if not isinstance(raw, dict):
        problems.append(f"accounts[{index}]: expected a mapping, got {kind(raw)}")
        return None
    label = raw.get("name")
    if not isinstance(label, str) or not label.strip():
        label = "?"
    findings = Findings(f"accounts[{index}] ({label})", environ)
    fields = Fields(raw, findings)

    name = fields.string("name", required=True)
    if name is not None and not _NAME.fullmatch(name):
        fields.add("name", "may hold only letters, digits, '.', '_' and '-', starting with a letter or digit")
    platform = fields.string("platform", required=True)
    spec = PLATFORMS.get(platform or "")
    if platform is not None and spec is None:
        fields.add("platform", f"unknown platform {platform!r}; expected one of {', '.join(platforms.ALL)}")
    if platform is None or spec is None:  # without a platform, only its common fields can be checked
        fields.check_known(COMMON_FIELDS | {f for s in PLATFORMS.values() for f in s.fields})
        problems.extend(findings.problems)
        return None
    fields.check_known(COMMON_FIELDS | spec.fields,
                       hint={f: misplaced(f, platform) for f in raw if isinstance(f, str) and misplaced(f, platform)})

    own = spec.read(fields)
    base_url = _base_url(fields, platform, own)
    priority = fields.integer("priority", DEFAULT_PRIORITY, *_INT32, "a 32-bit integer")
    weight = fields.integer("weight", DEFAULT_WEIGHT, 1, 1000, "an integer from 1 to 1000")
    max_concurrency = fields.integer("max_concurrency", 0, 0, 100_000, "an integer from 0 to 100000")
    enabled = fields.boolean("enabled", True)
    schedulable = fields.boolean("schedulable", True)
    models = fields.string_list("models", ["*"])
    if not models:
        fields.add("models", "must not be empty (omit it to serve every model)")
    model_mapping = fields.string_map("model_mapping")
    headers = _headers(fields)
    groups = fields.string_list("groups", [])
    timeout = fields.seconds("timeout_seconds")
    connect_timeout = fields.seconds("connect_timeout_seconds")
    proxy_url = _proxy_url(fields)

    problems.extend(findings.problems)
    if findings.problems or name is None or base_url is None:
        return None
    return Account(
        name=name,
        platform=platform,
        base_url=base_url,
        api_key=own.api_key,
        secrets=own.secrets,
        priority=priority,
        weight=weight,
        max_concurrency=max_concurrency,
        enabled=enabled,
        schedulable=schedulable,
        models=tuple(models),
        model_mapping=model_mapping,
        headers=headers,
        groups=frozenset(groups),
        timeout_seconds=timeout,
        connect_timeout_seconds=connect_timeout,
        proxy_url=proxy_url,
        region=own.region,
        deployments=own.deployments,
        api_version=own.api_version,
        path_style=own.path_style,
        organization=own.organization,
        project=own.project,
        error="; ".join(findings.unset_env) or None,
    )


def _yaml_error(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's snippet of the line (it may hold a secret)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "not valid YAML"
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    context = ""
    if exc.context and exc.problem:
        start = f" from line {exc.context_mark.line + 1}" if exc.context_mark else ""
        context = f" ({exc.context}{start})"
    return f"not valid YAML{where}: {exc.problem or exc.context or 'syntax error'}{context}"


def parse_accounts(text: str, *, source: str, environ: Mapping[str, str]) -> list[Account]:
    """Accounts in file order, or `AccountsInvalid` listing every problem."""
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AccountsInvalid(source, [_yaml_error(exc)]) from None
    if not isinstance(document, dict) or "accounts" not in document:
        raise AccountsInvalid(source, ["expected a mapping with an 'accounts' list at the top level"])
    extra = sorted(str(k) for k in document if k != "accounts")
    if extra:
        raise AccountsInvalid(source, [f"unknown top-level field(s): {', '.join(extra)}"])
    entries = document["accounts"]
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise AccountsInvalid(source, [f"'accounts' must be a list, got {kind(entries)}"])

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


def parse_account(spec: object, *, source: str) -> Account:
    """One account entry given on its own (a managed account, `UpsertAccount`), or `AccountsInvalid`.

    Its secrets must be inline: a `*_env` field would read the router's own environment, which whoever
    manages accounts at run time has no business reading.
    """
    problems = [f"field {name!r}: give the secret inline; a managed account does not read the router's "
                f"environment" for name in sorted(_env_fields(spec))]
    account = _account(0, spec, {}, problems)
    if problems or account is None:
        raise AccountsInvalid(source, [p.removeprefix("accounts[0]: ").removeprefix("accounts[0] ") for p in problems])
    return account


def _env_fields(value: object, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, inner in value.items():
        if isinstance(key, str):
            if key.endswith("_env"):
                found.add(prefix + key)
            found |= _env_fields(inner, f"{prefix}{key}.")
    return found
