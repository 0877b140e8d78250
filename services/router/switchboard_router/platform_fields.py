"""What each platform needs in an account: one reader per platform id, one table (`PLATFORMS`).

A platform's reader takes the account's YAML entry and returns the fields it adds to
the common ones (credential, region, Azure settings, …) and its default base URL;
its credential check says what a credential stored later (`StoreCredential`) must hold.
Adding a platform is one reader, one check and one row. Secret names on the wire
(`Credential.secrets`) are the ones router.proto documents. `S` marks a secret, given
inline or as `S_env` (see yaml_fields.Fields.secret)::

    claude-console, gemini   api_key S                                base_url default: the vendor's
    claude-ccr               api_key S                                base_url required
    openai                   api_key S, organization?, project?       https://api.openai.com
    openai-responses         api_key S, organization?, project?       https://api.openai.com
                             or (a ChatGPT sign-in, the Codex backend) https://chatgpt.com/backend-api/codex
                             oauth: {refresh_token S, access_token S?, expires_at?, account_id}
                             -> secrets refresh_token, access_token, expires_at, chatgpt_account_id
                             (account_id: the ChatGPT account id, a UUID); never both
    azure-openai             api_key S, path_style? (deployments|v1), base_url required (the endpoint)
                             api_version? (deployments only, default 2024-10-21),
                             deployments? {model or glob: deployment}
    claude-official          oauth: {refresh_token S, access_token S?, expires_at?}
                             -> secrets refresh_token, access_token, expires_at (POSIX seconds);
                             refresh_token may be left out when access_token and expires_at are given
    bedrock                  region, and aws: {access_key_id S, secret_access_key S, session_token S?}
                             -> secrets aws_access_key_id, aws_secret_access_key, aws_session_token;
                             or api_key S (a Bedrock API key) -> Credential.api_key; never both
                             base_url default https://bedrock-runtime.{region}.amazonaws.com
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from switchboard_common import platforms
from switchboard_router.yaml_fields import Fields, kind, secret_names

ANTHROPIC_API = "https://api.anthropic.com"
OPENAI_API = "https://api.openai.com"
CODEX_BACKEND = "https://chatgpt.com/backend-api/codex"
GEMINI_API = "https://generativelanguage.googleapis.com"
AZURE_API_VERSION = "2024-10-21"  # the current GA data-plane version; the edge defaults to it too
PATH_STYLES = ("deployments", "v1")

# Credential.secrets names (router.proto).
ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT = "access_token", "refresh_token", "expires_at"
CHATGPT_ACCOUNT_ID = "chatgpt_account_id"
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN = (
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
# Larger than any real POSIX time in seconds for centuries: a value past it is milliseconds.
_MAX_POSIX_SECONDS = 100_000_000_000


@dataclass(frozen=True)
class PlatformFields:
    """The platform's part of an account, as read from its entry."""

    api_key: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict)
    # Base URL when the entry gives none; None: the entry must give one.
    default_base_url: str | None = None
    region: str = ""
    deployments: Mapping[str, str] = field(default_factory=dict)
    api_version: str = ""
    path_style: str = ""
    organization: str = ""
    project: str = ""


# A stored credential's problems, each "credential.<field>: <message>", no value shown.
CredentialCheck = Callable[[str, Mapping[str, str]], list[str]]


@dataclass(frozen=True)
class PlatformSpec:
    # YAML keys this platform adds to the common ones.
    fields: frozenset[str]
    read: Callable[[Fields], PlatformFields]
    check_credential: CredentialCheck


# --- stored credentials -------------------------------------------------------------------------


def _credential_problems(api_key: str, secrets: Mapping[str, str], *, api_key_allowed: bool,
                         allowed: frozenset[str]) -> list[str]:
    problems = []
    if api_key and not api_key_allowed:
        problems.append("credential.api_key: not used by this platform")
    for name in sorted(secrets):
        if name not in allowed:
            shown = repr(name) if _PRINTABLE.fullmatch(name) and len(name) <= 64 else "(unprintable)"
            problems.append(f"credential.secrets: unknown name {shown}")
        elif not secrets[name]:
            problems.append(f"credential.secrets.{name}: must not be empty")
    return problems


def _api_key_credential(api_key: str, secrets: Mapping[str, str]) -> list[str]:
    problems = _credential_problems(api_key, secrets, api_key_allowed=True, allowed=frozenset())
    if not api_key:
        problems.append("credential.api_key: is required")
    return problems


def _oauth_tokens_problems(secrets: Mapping[str, str]) -> list[str]:
    problems = []
    if not secrets.get(REFRESH_TOKEN) and not (secrets.get(ACCESS_TOKEN) and secrets.get(EXPIRES_AT)):
        problems.append(f"credential.secrets.{REFRESH_TOKEN}: is required (or {ACCESS_TOKEN} with {EXPIRES_AT})")
    if secrets.get(EXPIRES_AT) and not secrets[EXPIRES_AT].isdigit():
        problems.append(f"credential.secrets.{EXPIRES_AT}: expected POSIX seconds (digits only)")
    return problems


def _oauth_credential(api_key: str, secrets: Mapping[str, str]) -> list[str]:
    problems = _credential_problems(api_key, secrets, api_key_allowed=False,
                                    allowed=frozenset({ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT}))
    return problems + _oauth_tokens_problems(secrets)


def _openai_responses_credential(api_key: str, secrets: Mapping[str, str]) -> list[str]:
    """An API key alone, or the ChatGPT sign-in: the OAuth tokens and the ChatGPT account id."""
    problems = _credential_problems(api_key, secrets, api_key_allowed=True,
                                    allowed=frozenset({ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT, CHATGPT_ACCOUNT_ID}))
    if api_key and secrets:
        problems.append("credential: either api_key (an OpenAI API key) or the ChatGPT sign-in secrets, not both")
    elif not api_key:
        problems += _oauth_tokens_problems(secrets)
        account_id = secrets.get(CHATGPT_ACCOUNT_ID, "")
        if not account_id:
            problems.append(f"credential.secrets.{CHATGPT_ACCOUNT_ID}: is required (or api_key)")
        elif not _UUID.fullmatch(account_id):
            problems.append(f"credential.secrets.{CHATGPT_ACCOUNT_ID}: expected a UUID")
    return problems


def _bedrock_credential(api_key: str, secrets: Mapping[str, str]) -> list[str]:
    problems = _credential_problems(api_key, secrets, api_key_allowed=True,
                                    allowed=frozenset({AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN}))
    if api_key and secrets:
        problems.append("credential: either api_key (a Bedrock API key) or the aws_* secrets, not both")
    elif not api_key and not (secrets.get(AWS_ACCESS_KEY_ID) and secrets.get(AWS_SECRET_ACCESS_KEY)):
        problems.append(f"credential: needs api_key, or the secrets {AWS_ACCESS_KEY_ID} and {AWS_SECRET_ACCESS_KEY}")
    return problems


# --- readers ------------------------------------------------------------------------------------


def _header_value(fields: Fields, name: str) -> str:
    """An optional value the edge sends as a header: printable ASCII only."""
    value = fields.string(name) or ""
    if value and not _PRINTABLE.fullmatch(value):
        fields.add(name, "may hold only printable ASCII characters")
        return ""
    return value


def _api_key_reader(default_base_url: str | None) -> Callable[[Fields], PlatformFields]:
    """claude-console, claude-ccr (no default: base_url required), gemini: a key and nothing else."""

    def read(fields: Fields) -> PlatformFields:
        return PlatformFields(api_key=fields.secret("api_key", required=True) or "",
                              default_base_url=default_base_url)

    return read


def _read_openai(fields: Fields) -> PlatformFields:
    return PlatformFields(
        api_key=fields.secret("api_key", required=True) or "",
        default_base_url=OPENAI_API,
        organization=_header_value(fields, "organization"),
        project=_header_value(fields, "project"),
    )


def _read_azure_openai(fields: Fields) -> PlatformFields:
    path_style = fields.choice("path_style", PATH_STYLES, "deployments")
    unquoted = fields.raw.get("api_version")
    if isinstance(unquoted, date) and not isinstance(unquoted, datetime):  # YAML reads 2024-10-21 as a date
        api_version: str | None = unquoted.isoformat()
    else:
        api_version = fields.string("api_version")
    if api_version is not None:
        if path_style == "v1":
            fields.add("api_version", "not used with path_style v1 (the /openai/v1/ API takes no api-version)")
        elif not _API_VERSION.fullmatch(api_version):
            fields.add("api_version", f"expected a date like {AZURE_API_VERSION} (optionally -preview), "
                                      f"got {api_version[:40]!r}")
    deployments = fields.string_map("deployments")
    for model, deployment in deployments.items():
        if not _DEPLOYMENT.fullmatch(deployment):
            fields.add("deployments", f"entry {model[:100]!r}: a deployment name has 1-64 letters, digits, "
                                      "'.', '_' or '-'")
    if path_style == "deployments":
        api_version = api_version or AZURE_API_VERSION
    return PlatformFields(
        api_key=fields.secret("api_key", required=True) or "",
        default_base_url=None,  # the resource endpoint, e.g. https://myres.openai.azure.com
        deployments=deployments,
        api_version=api_version or "",
        path_style=path_style,
    )


def _posix_seconds(fields: Fields, name: str) -> str | None:
    """POSIX seconds (a number) or an ISO 8601 timestamp (zone-less means UTC), as a digits string."""
    value = fields.raw.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            fields.add(name, "expected POSIX seconds or an ISO 8601 timestamp, got a string that is neither")
            return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return str(int(moment.timestamp()))
    if isinstance(value, date) or isinstance(value, bool) or not isinstance(value, int | float):
        fields.add(name, f"expected POSIX seconds or an ISO 8601 timestamp with a time, got {kind(value)}")
        return None
    if not 0 <= value < _MAX_POSIX_SECONDS:
        fields.add(name, "expected POSIX seconds (not milliseconds), 0 or more")
        return None
    return str(int(value))


_OAUTH_FIELDS = secret_names(ACCESS_TOKEN, REFRESH_TOKEN) | {EXPIRES_AT}


def _read_claude_official(fields: Fields) -> PlatformFields:
    oauth = fields.section("oauth", _OAUTH_FIELDS, required=True)
    secrets: dict[str, str] = {}
    if oauth is not None:
        access = oauth.secret(ACCESS_TOKEN, required=False)
        expires_at = _posix_seconds(oauth, EXPIRES_AT)
        # A long-lived access token (no refresh token) needs its expiry; otherwise a refresh token is required.
        refresh = oauth.secret(REFRESH_TOKEN, required=access is None or expires_at is None)
        for name, value in ((ACCESS_TOKEN, access), (REFRESH_TOKEN, refresh), (EXPIRES_AT, expires_at)):
            if value is not None:
                secrets[name] = value
    return PlatformFields(secrets=secrets, default_base_url=ANTHROPIC_API)


_CODEX_OAUTH_FIELDS = _OAUTH_FIELDS | {"account_id"}


def _read_openai_responses(fields: Fields) -> PlatformFields:
    """An OpenAI API key (as the openai platform), or `oauth`: a ChatGPT sign-in reaching the Codex backend."""
    has_key = fields.has("api_key") or fields.has("api_key_env")
    if not fields.has("oauth"):
        if not has_key:
            fields.add("api_key", "one of 'api_key' (an OpenAI API key) or 'oauth' (a ChatGPT sign-in) is required")
            return PlatformFields(default_base_url=OPENAI_API)
        return _read_openai(fields)
    if has_key:
        fields.add("oauth", "set either 'api_key' (an OpenAI API key) or 'oauth' (a ChatGPT sign-in), not both")
        return PlatformFields(default_base_url=CODEX_BACKEND)
    for name in ("organization", "project"):
        if fields.has(name):
            fields.add(name, "used only with 'api_key' (the ChatGPT backend takes no organization or project)")
    oauth = fields.section("oauth", _CODEX_OAUTH_FIELDS, required=True)
    secrets: dict[str, str] = {}
    if oauth is not None:
        access = oauth.secret(ACCESS_TOKEN, required=False)
        expires_at = _posix_seconds(oauth, EXPIRES_AT)
        refresh = oauth.secret(REFRESH_TOKEN, required=access is None or expires_at is None)
        account_id = oauth.string("account_id", required=True)
        if account_id is not None and not _UUID.fullmatch(account_id):
            oauth.add("account_id", "expected the ChatGPT account id, a UUID (chatgpt_account_id in Codex's auth.json)")
            account_id = None
        for name, value in ((ACCESS_TOKEN, access), (REFRESH_TOKEN, refresh), (EXPIRES_AT, expires_at),
                            (CHATGPT_ACCOUNT_ID, account_id)):
            if value is not None:
                secrets[name] = value
    return PlatformFields(secrets=secrets, default_base_url=CODEX_BACKEND)


_AWS_FIELDS = secret_names("access_key_id", "secret_access_key", "session_token")


def bedrock_base_url(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock-runtime.{region}.{suffix}"


def _read_bedrock(fields: Fields) -> PlatformFields:
    region = fields.string("region", required=True)
    if region is not None and not _REGION.fullmatch(region):
        fields.add("region", f"expected an AWS region such as us-east-1, got {region[:40]!r}")
        region = None
    api_key, secrets = "", {}
    has_key = fields.has("api_key") or fields.has("api_key_env")
    if has_key and fields.has("aws"):
        fields.add("aws", "set either 'aws' (access keys) or 'api_key' (a Bedrock API key), not both")
    elif has_key:
        api_key = fields.secret("api_key", required=True) or ""
    else:
        aws = fields.section("aws", _AWS_FIELDS, required=False)
        if aws is None and not fields.has("aws"):
            fields.add("aws", "one of 'aws' (access keys) or 'api_key' (a Bedrock API key) is required")
        if aws is not None:
            for yaml_name, wire_name, required in (("access_key_id", AWS_ACCESS_KEY_ID, True),
                                                   ("secret_access_key", AWS_SECRET_ACCESS_KEY, True),
                                                   ("session_token", AWS_SESSION_TOKEN, False)):
                value = aws.secret(yaml_name, required=required)
                if value is not None:
                    secrets[wire_name] = value
    return PlatformFields(api_key=api_key, secrets=secrets, region=region or "",
                          default_base_url=bedrock_base_url(region) if region else None)


_KEY = secret_names("api_key")

PLATFORMS: Mapping[str, PlatformSpec] = {
    platforms.CLAUDE_OFFICIAL: PlatformSpec(frozenset({"oauth"}), _read_claude_official, _oauth_credential),
    platforms.CLAUDE_CONSOLE: PlatformSpec(_KEY, _api_key_reader(ANTHROPIC_API), _api_key_credential),
    platforms.CLAUDE_CCR: PlatformSpec(_KEY, _api_key_reader(None), _api_key_credential),
    platforms.BEDROCK: PlatformSpec(_KEY | {"region", "aws"}, _read_bedrock, _bedrock_credential),
    platforms.OPENAI: PlatformSpec(_KEY | {"organization", "project"}, _read_openai, _api_key_credential),
    platforms.AZURE_OPENAI: PlatformSpec(_KEY | {"api_version", "path_style", "deployments"}, _read_azure_openai,
                                         _api_key_credential),
    platforms.GEMINI: PlatformSpec(_KEY, _api_key_reader(GEMINI_API), _api_key_credential),
    platforms.OPENAI_RESPONSES: PlatformSpec(_KEY | {"organization", "project", "oauth"}, _read_openai_responses,
                                             _openai_responses_credential),
}
assert set(PLATFORMS) == set(platforms.ALL), "every platform id needs a row"


def misplaced(field_name: str, platform: str) -> str:
    """The message for a field that other platforms take, or "" when none does."""
    users = [p for p, spec in PLATFORMS.items() if field_name in spec.fields and p != platform]
    return f"not a field of platform {platform} (it is one of {', '.join(users)})" if users else ""
