"""`GET /claude/v1/models` and `GET /openai/v1/models`: the models the caller's key may use and the pool serves.

A model is listed when an enabled account of a platform the route reaches, open to the key's groups,
names it exactly (a model pattern without wildcards, a mapping's requested name, an Azure deployment's
model), and the key's platform and model permissions allow it. Glob patterns cannot be listed.
"""

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

import orjson

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2

_USABLE = (router_pb2.ACCOUNT_STATE_READY, router_pb2.ACCOUNT_STATE_COOLING)
# A fixed creation date: the pool does not know when a vendor released a model.
_CREATED = 1_700_000_000
_CREATED_AT = "2023-11-14T22:13:20Z"


def _is_glob(name: str) -> bool:
    return any(character in name for character in "*?[")


def listed_models(accounts: Iterable[router_pb2.AccountStatus], platforms: Sequence[str],
                  key: auth_pb2.AuthorizeResponse) -> list[str]:
    allowed_platforms = set(key.permissions.allowed_platforms)
    allowed_models = list(key.permissions.allowed_models)
    groups = set(key.identity.groups)
    names: set[str] = set()
    for status in accounts:
        account = status.account
        if status.state not in _USABLE or account.platform not in platforms:
            continue
        if allowed_platforms and account.platform not in allowed_platforms:
            continue
        if account.groups and not groups & set(account.groups):
            continue
        for name in (*status.models, *account.model_mapping, *account.deployments):
            if name and not _is_glob(name):
                names.add(name)
    return sorted(name for name in names
                  if not allowed_models or any(fnmatchcase(name, pattern) for pattern in allowed_models))


def anthropic_list(names: Sequence[str]) -> bytes:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": _CREATED_AT} for name in names]
    return orjson.dumps({"data": data, "has_more": False, "first_id": names[0] if names else None,
                         "last_id": names[-1] if names else None})


def gemini_list(names: Sequence[str]) -> bytes:
    return orjson.dumps({"models": [
        {"name": f"models/{name}", "displayName": name,
         "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}
        for name in names]})


def openai_list(names: Sequence[str]) -> bytes:
    return orjson.dumps({"object": "list", "data": [
        {"id": name, "object": "model", "created": _CREATED, "owned_by": "switchboard"} for name in names]})
