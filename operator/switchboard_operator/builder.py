"""UpstreamAccount (spec + its Secret's data) -> one accounts-file entry for `UpsertAccount`. Pure functions.

The router validates the entry again (`switchboard_router.accounts_yaml.parse_account`); this module only
maps names and reports what it can see without the router: a Secret key the platform needs that is missing.
No message here ever holds a Secret value (only key names).

Secret keys per platform (the Secret's `data`, in the UpstreamAccount's namespace)::

    claude-console, claude-ccr, gemini, openai, azure-openai   api_key
    claude-official     refresh_token, and/or access_token + expires_at (POSIX seconds)
    openai-responses    api_key (an OpenAI API key), or a ChatGPT sign-in: refresh_token (and/or access_token +
                        expires_at) and account_id (the ChatGPT account id, a UUID)
    bedrock             api_key (a Bedrock API key), or aws_access_key_id + aws_secret_access_key
                        (+ aws_session_token)
    any                 proxy_url (optional): a proxy URL carrying a password (else spec.proxyUrl)
"""

import base64
import binascii
from collections.abc import Mapping
from typing import Any

API_KEY = "api_key"
ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT, ACCOUNT_ID = "access_token", "refresh_token", "expires_at", "account_id"
AWS_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
PROXY_URL = "proxy_url"
OAUTH_KEYS = (ACCESS_TOKEN, REFRESH_TOKEN, EXPIRES_AT)

API_KEY_PLATFORMS = ("claude-console", "claude-ccr", "gemini", "openai", "azure-openai")
# The Secret keys each platform reads (any other key is ignored, so one Secret may hold more).
SECRET_KEYS: Mapping[str, tuple[str, ...]] = {
    **{platform: (API_KEY, PROXY_URL) for platform in API_KEY_PLATFORMS},
    "claude-official": (*OAUTH_KEYS, PROXY_URL),
    "openai-responses": (API_KEY, *OAUTH_KEYS, ACCOUNT_ID, PROXY_URL),
    "bedrock": (API_KEY, *AWS_KEYS, PROXY_URL),
}
PLATFORMS = tuple(SECRET_KEYS)

# spec field (camelCase) -> accounts-file field; copied as they are when present.
_PLAIN_FIELDS = {
    "baseUrl": "base_url", "models": "models", "modelMapping": "model_mapping", "headers": "headers",
    "priority": "priority", "weight": "weight", "groups": "groups", "maxConcurrency": "max_concurrency",
    "proxyUrl": "proxy_url", "timeoutSeconds": "timeout_seconds", "connectTimeoutSeconds": "connect_timeout_seconds",
    "enabled": "enabled", "schedulable": "schedulable", "region": "region", "deployments": "deployments",
    "apiVersion": "api_version", "pathStyle": "path_style", "organization": "organization", "project": "project",
}


class SpecError(ValueError):
    """The UpstreamAccount (with its Secret) cannot become an account; the message names fields and keys only."""


def account_name(namespace: str, name: str) -> str:
    """The router account's name: Kubernetes names are lower-case letters, digits, '-' and '.', and a namespace
    has no '.', so "<namespace>.<name>" is unique and valid for the router ([A-Za-z0-9][A-Za-z0-9._-]*)."""
    return f"{namespace}.{name}"


def account_id(platform: str, namespace: str, name: str) -> str:
    return f"{platform}/{account_name(namespace, name)}"


def decode_secret(data: Mapping[str, str] | None) -> dict[str, str]:
    """A Secret's `data` (base64 values) as text, values stripped. Raises `SpecError` naming the bad key."""
    decoded: dict[str, str] = {}
    for key, value in (data or {}).items():
        try:
            decoded[key] = base64.b64decode(value or "", validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise SpecError(f"Secret key {key!r} is not base64-encoded UTF-8 text") from None
    return decoded


def encode_secret(values: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}


def _expires_at(value: str) -> int | str:
    """POSIX seconds as a number (the accounts file's form); anything else goes to the router as it is (an
    ISO 8601 timestamp is accepted there too; anything else is refused there, naming the field)."""
    return int(value) if value.isdigit() else value


def _oauth(secret: Mapping[str, str], *, with_account_id: bool) -> dict[str, Any]:
    oauth: dict[str, Any] = {key: secret[key] for key in (ACCESS_TOKEN, REFRESH_TOKEN) if secret.get(key)}
    if secret.get(EXPIRES_AT):
        oauth[EXPIRES_AT] = _expires_at(secret[EXPIRES_AT])
    if with_account_id and secret.get(ACCOUNT_ID):
        oauth[ACCOUNT_ID] = secret[ACCOUNT_ID]
    if not oauth.get(REFRESH_TOKEN) and not (oauth.get(ACCESS_TOKEN) and oauth.get(EXPIRES_AT)):
        raise SpecError(f"the Secret needs key {REFRESH_TOKEN!r} (or {ACCESS_TOKEN!r} with {EXPIRES_AT!r})")
    return oauth


def credential_fields(platform: str, secret: Mapping[str, str]) -> dict[str, Any]:
    """The accounts-file credential fields of `platform` from the Secret's decoded data."""
    if platform in API_KEY_PLATFORMS:
        if not secret.get(API_KEY):
            raise SpecError(f"the Secret needs key {API_KEY!r} for platform {platform}")
        return {API_KEY: secret[API_KEY]}
    if platform == "claude-official":
        return {"oauth": _oauth(secret, with_account_id=False)}
    if platform == "openai-responses":
        has_oauth = any(secret.get(key) for key in (*OAUTH_KEYS, ACCOUNT_ID))
        if secret.get(API_KEY) and has_oauth:
            raise SpecError(f"the Secret holds both {API_KEY!r} and ChatGPT sign-in keys; keep one of them")
        if secret.get(API_KEY):
            return {API_KEY: secret[API_KEY]}
        if not has_oauth:
            raise SpecError(f"the Secret needs key {API_KEY!r}, or {REFRESH_TOKEN!r} and {ACCOUNT_ID!r} "
                            "(a ChatGPT sign-in)")
        if not secret.get(ACCOUNT_ID):
            raise SpecError(f"the Secret needs key {ACCOUNT_ID!r} (the ChatGPT account id) with the sign-in tokens")
        return {"oauth": _oauth(secret, with_account_id=True)}
    if platform == "bedrock":
        has_aws = any(secret.get(key) for key in AWS_KEYS)
        if secret.get(API_KEY) and has_aws:
            raise SpecError(f"the Secret holds both {API_KEY!r} and aws_* keys; keep one of them")
        if secret.get(API_KEY):
            return {API_KEY: secret[API_KEY]}
        missing = [key for key in AWS_KEYS[:2] if not secret.get(key)]
        if missing:
            raise SpecError(f"the Secret needs key {API_KEY!r}, or {AWS_KEYS[0]!r} and {AWS_KEYS[1]!r} "
                            f"(missing: {', '.join(missing)})")
        aws = {key.removeprefix("aws_"): secret[key] for key in AWS_KEYS if secret.get(key)}
        return {"aws": aws}
    raise SpecError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")


def build_account(namespace: str, name: str, spec: Mapping[str, Any], secret: Mapping[str, str]) -> dict[str, Any]:
    """The accounts-file entry (router `UpsertAccount.spec_json`) for an UpstreamAccount and its Secret's
    decoded data. Raises `SpecError`."""
    platform = spec.get("platform")
    if not isinstance(platform, str) or platform not in SECRET_KEYS:
        raise SpecError(f"spec.platform must be one of {', '.join(PLATFORMS)}")
    entry: dict[str, Any] = {"name": account_name(namespace, name), "platform": platform}
    for field, target in _PLAIN_FIELDS.items():
        if spec.get(field) is not None:
            entry[target] = spec[field]
    entry.update(credential_fields(platform, secret))
    if secret.get(PROXY_URL):
        if "proxy_url" in entry:
            raise SpecError(f"the proxy is given twice: spec.proxyUrl and the Secret's key {PROXY_URL!r}; keep one")
        entry["proxy_url"] = secret[PROXY_URL]
    return entry


def secret_writeback(platform: str, api_key: str, secrets: Mapping[str, str],
                     current: Mapping[str, str]) -> dict[str, str]:
    """The Secret keys to change so that it holds the credential the router stored (refreshed OAuth tokens):
    only keys whose value differs, so writing it is idempotent. Empty when nothing is to be written."""
    wanted: dict[str, str] = {}
    if platform in ("claude-official", "openai-responses") and not api_key:
        for key in OAUTH_KEYS:
            if secrets.get(key):
                wanted[key] = secrets[key]
        if platform == "openai-responses" and secrets.get("chatgpt_account_id"):
            wanted[ACCOUNT_ID] = secrets["chatgpt_account_id"]
    return {key: value for key, value in wanted.items() if current.get(key) != value}
