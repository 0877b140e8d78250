"""ChatGPT sign-in for Codex (auth.openai.com): which access tokens are valid, and ``POST /oauth/token``.

The token endpoint takes what Codex CLI sends, ``{"client_id": …, "grant_type": "refresh_token",
"refresh_token": …, "scope": "openid profile email"}`` (JSON, or form-encoded), and answers::

    {"access_token": <JWT>, "expires_in": 864000, "id_token": <JWT>, "refresh_token": "rt_…",
     "scope": "openid profile email offline_access", "token_type": "bearer"}

Both JWTs carry the ``https://api.openai.com/auth`` claim ``{"chatgpt_account_id", "chatgpt_plan_type",
"chatgpt_user_id", "user_id"}`` (the id token also ``email``); Codex reads the account id from the id
token and sends it as ``chatgpt-account-id``. Refresh tokens rotate: each works once. Failures use the
OpenAI envelope (2-space indented) as the real server sends them:

- a used refresh token: 401 ``refresh_token_reused`` "Your refresh token has already been used to
  generate a new access token. Please try signing in again.";
- an unknown one: 401 ``token_expired`` "Could not validate your token. Please try signing in again.";
- a missing parameter, another grant type, a client id not in ``oauth_client_ids``: 400
  ``missing_required_parameter`` / ``unsupported_grant_type`` / 401 ``invalid_client``.

Issued tokens are HMAC-signed (HS256 JWTs, ``rt_<nonce>.<mac>``) so they stay valid across simulator
restarts; only the set of used refresh tokens is kept in memory. Injected faults come from
``codex.oauth_token_fault`` (a 400 or 401 answers the unknown-token error).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import orjson

from .. import faults
from ..faults import Fault
from ..pipeline import Exchange, Refusal
from .oauth_grant import RefreshGrantEndpoint
from .openai_errors import OpenAIError, fault_error

if TYPE_CHECKING:
    from .codex import CodexConfig

API = "codex_oauth"
ISSUER = "https://auth.openai.com"
SCOPE = "openid profile email offline_access"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
REFRESH_PREFIX = "rt_"
REUSED = "Your refresh token has already been used to generate a new access token. Please try signing in again."
INVALID = "Could not validate your token. Please try signing in again."
EMAIL = "simulator@example.com"
_SIGNING_KEY = b"switchboard-simulator-codex-oauth-v1"
_HEADER = {"alg": "HS256", "kid": "switchboard-simulator", "typ": "JWT"}

AccessState = Literal["valid", "expired", "unknown"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(text: str) -> bytes:
    return hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).digest()


def jwt(payload: dict[str, Any]) -> str:
    signing_input = f"{_b64(orjson.dumps(_HEADER))}.{_b64(orjson.dumps(payload))}"
    return f"{signing_input}.{_b64(_mac(signing_input))}"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT this simulator signed, or None (unparsable or forged)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        signature = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(signature, _mac(f"{parts[0]}.{parts[1]}")) or not isinstance(claims, dict):
        return None
    return claims


class CodexTokens:
    """Issues, checks and rotates the ChatGPT tokens of one simulator run."""

    def __init__(self, vendor: CodexConfig, clock: Callable[[], float] = time.time) -> None:
        self.vendor = vendor
        self.lifetime = vendor.oauth_token_lifetime_seconds
        self._clock = clock
        self._initial_refresh = set(vendor.oauth_refresh_tokens)
        self._used: set[str] = set()

    def access(self, token: str) -> tuple[AccessState, str | None]:
        """Whether `token` is an access token this simulator issued, and the account it is for."""
        claims = jwt_claims(token)
        auth = claims.get(AUTH_CLAIM) if claims else None
        if not isinstance(auth, dict) or not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            return "unknown", None
        state: AccessState = "valid" if self._clock() < claims["exp"] else "expired"
        return state, auth.get("chatgpt_account_id")

    def _refresh_known(self, token: str) -> bool:
        if token in self._initial_refresh:
            return True
        nonce, dot, mac = token.removeprefix(REFRESH_PREFIX).rpartition(".")
        return token.startswith(REFRESH_PREFIX) and bool(dot and nonce) and hmac.compare_digest(
            mac, _mac(f"refresh-{nonce}").hex()[:32])

    def refresh(self, refresh_token: str, client_id: str | None = None) -> dict[str, Any] | OpenAIError:
        """The token answer for `refresh_token` (which stops working), or the vendor's error."""
        if refresh_token in self._used:
            return OpenAIError(401, REUSED, code="refresh_token_reused")
        if not self._refresh_known(refresh_token):
            return OpenAIError(401, INVALID, code="token_expired")
        self._used.add(refresh_token)
        return self.issue(client_id)

    def issue(self, client_id: str | None = None) -> dict[str, Any]:
        vendor, now = self.vendor, int(self._clock())
        expires = now + int(self.lifetime)
        user_id = f"user-{vendor.account_id.replace('-', '')[:24]}"
        auth = {"chatgpt_account_id": vendor.account_id, "chatgpt_plan_type": vendor.plan_type,
                "chatgpt_user_id": user_id, "user_id": user_id}
        access = jwt({
            "aud": ["https://api.openai.com/v1"], "client_id": client_id or _first(vendor.oauth_client_ids),
            "exp": expires, AUTH_CLAIM: auth, PROFILE_CLAIM: {"email": EMAIL, "email_verified": True},
            "iat": now, "iss": ISSUER, "jti": str(uuid.uuid4()), "nbf": now,
            "scp": SCOPE.split(), "sub": f"auth0|{user_id}",
        })
        id_token = jwt({
            "aud": [client_id or _first(vendor.oauth_client_ids)], "auth_time": now, "email": EMAIL,
            "email_verified": True, "exp": now + 3600, AUTH_CLAIM: auth, "iat": now, "iss": ISSUER,
            "jti": str(uuid.uuid4()), "sub": f"auth0|{user_id}",
        })
        nonce = secrets.token_urlsafe(32)
        refresh = f"{REFRESH_PREFIX}{nonce}.{_mac(f'refresh-{nonce}').hex()[:32]}"
        return {"access_token": access, "expires_in": int(self.lifetime), "id_token": id_token,
                "refresh_token": refresh, "scope": SCOPE, "token_type": "bearer"}


def _first(values: frozenset[str]) -> str:
    return min(values) if values else "app_simulator"


def _missing(param: str) -> OpenAIError:
    return OpenAIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


class TokenEndpoint(RefreshGrantEndpoint[CodexTokens]):
    """``POST /oauth/token``: the refresh-token grant with rotation; faults from ``oauth_token_fault``."""

    api = API
    section = "codex"
    vendor: CodexConfig

    def bad_request(self, message: str) -> Refusal:
        return OpenAIError(400, message, param=faults.FAULT_HEADER)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        if fault.kind == "status" and fault.status in (400, 401):
            return OpenAIError(401, INVALID, code="token_expired")
        return fault_error(fault, "oauth")

    def unreadable_body(self) -> Refusal:
        return OpenAIError(400, "The request body must be JSON or form-encoded.", code="invalid_request")

    def missing_parameter(self, name: str) -> Refusal:
        return _missing(name)

    def unsupported_grant(self, grant_type: Any) -> Refusal:
        return OpenAIError(400, f"Unsupported grant type: '{grant_type}'.", param="grant_type",
                           code="unsupported_grant_type")

    def invalid_client(self) -> Refusal:
        return OpenAIError(401, "Invalid client. Please check the client_id.", param="client_id",
                           code="invalid_client")

    def grant(self, refresh_token: str, client_id: str | None) -> dict[str, Any]:
        answer = self.tokens.refresh(refresh_token, client_id)
        if isinstance(answer, OpenAIError):
            raise answer
        return answer
