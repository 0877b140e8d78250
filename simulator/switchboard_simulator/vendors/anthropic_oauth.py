"""Anthropic OAuth for subscription accounts: which access tokens are valid, and ``POST /v1/oauth/token``.

The token endpoint takes ``{"grant_type": "refresh_token", "refresh_token": …, "client_id": …}`` (JSON,
or form-encoded as RFC 6749 has it) and answers, as the vendor does::

    {"token_type": "Bearer", "access_token": "sk-ant-oat01-…", "expires_in": 28800,
     "refresh_token": "sk-ant-ort01-…", "scope": "user:inference user:profile",
     "organization": {"uuid": …, "name": …}, "account": {"uuid": …, "email_address": …}}

Refresh tokens rotate: each works once, and the answer carries the next one (a used or unknown one is
400 ``{"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}``). Other
failures use the same RFC 6749 envelope (``invalid_request``, ``unsupported_grant_type``,
``invalid_client`` when ``oauth_client_ids`` is set); injected 429 and 5xx faults answer in the
Anthropic error envelope.

Tokens the simulator issues carry their own expiry and an HMAC over it, so they stay valid across
simulator restarts (a gateway that persisted them keeps working); only the set of used refresh tokens
is kept in memory. Initial access tokens from the config are valid for one lifetime from start.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ..faults import Fault
from ..pipeline import Exchange, Refusal
from .anthropic_errors import fault_error
from .oauth_grant import RefreshGrantEndpoint

if TYPE_CHECKING:
    from .anthropic import AnthropicConfig

API = "anthropic_oauth"
OAUTH_BETA = "oauth-2025-04-20"
ACCESS_PREFIX = "sk-ant-oat01-"
REFRESH_PREFIX = "sk-ant-ort01-"
SCOPE = "user:inference user:profile"
ORGANIZATION = {"uuid": "5e1a7c3b-0000-4000-8000-5eed51a70000", "name": "Simulated organization"}
ACCOUNT = {"uuid": "5e1a7c3b-0000-4000-8000-acc0a7000000", "email_address": "simulator@example.com"}
INVALID_GRANT = "Refresh token not found or invalid"
_SIGNING_KEY = b"switchboard-simulator-oauth-v1"

AccessState = Literal["valid", "expired", "unknown"]


def _mac(text: str) -> str:
    return hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).hexdigest()[:32]


class OAuthTokens:
    """Issues, checks and rotates the OAuth tokens of one simulator run."""

    def __init__(self, vendor: AnthropicConfig, clock: Callable[[], float] = time.time) -> None:
        self.lifetime = vendor.oauth_token_lifetime_seconds
        self._clock = clock
        started = clock()
        self._initial_access = {token: started + self.lifetime for token in vendor.oauth_access_tokens}
        self._initial_refresh = set(vendor.oauth_refresh_tokens)
        self._used: set[str] = set()

    def access_state(self, token: str) -> AccessState:
        """Whether `token` is an access token this simulator knows, and whether it is still valid."""
        expires_at = self._initial_access.get(token)
        if expires_at is None:
            expires_at = self._issued_expiry(token)
        if expires_at is None:
            return "unknown"
        return "valid" if self._clock() < expires_at else "expired"

    def _issued_expiry(self, token: str) -> float | None:
        if not token.startswith(ACCESS_PREFIX):
            return None
        payload, _, mac = token[len(ACCESS_PREFIX):].rpartition("-")
        expires_text, _, _nonce = payload.partition("-")
        if not expires_text.isdigit() or not hmac.compare_digest(mac, _mac(f"access-{payload}")):
            return None
        return int(expires_text) / 1000.0

    def _refresh_known(self, token: str) -> bool:
        if token in self._initial_refresh:
            return True
        if not token.startswith(REFRESH_PREFIX):
            return False
        nonce, _, mac = token[len(REFRESH_PREFIX):].rpartition("-")
        return bool(nonce) and hmac.compare_digest(mac, _mac(f"refresh-{nonce}"))

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """The token answer for `refresh_token` (which stops working), or None when it is not valid."""
        if refresh_token in self._used or not self._refresh_known(refresh_token):
            return None
        self._used.add(refresh_token)
        return self.issue()

    def issue(self) -> dict[str, Any]:
        """A fresh access and refresh token pair, as the token endpoint's answer."""
        expires_ms = int((self._clock() + self.lifetime) * 1000)
        access_payload = f"{expires_ms}-{secrets.token_urlsafe(24)}"
        access = f"{ACCESS_PREFIX}{access_payload}-{_mac(f'access-{access_payload}')}"
        nonce = secrets.token_urlsafe(32)
        refresh = f"{REFRESH_PREFIX}{nonce}-{_mac(f'refresh-{nonce}')}"
        return {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": int(self.lifetime),
            "refresh_token": refresh,
            "scope": SCOPE,
            "organization": ORGANIZATION,
            "account": ACCOUNT,
        }


class OAuthError(Refusal):
    """RFC 6749's error answer: ``{"error": code, "error_description": text}``."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description

    def parts(self) -> tuple[dict[str, str], bytes]:
        body = orjson.dumps({"error": self.code, "error_description": self.description})
        return {"Content-Type": "application/json", "Cache-Control": "no-store"}, body


class TokenEndpoint(RefreshGrantEndpoint[OAuthTokens]):
    """``POST /v1/oauth/token``: the refresh-token grant with rotation; faults from ``oauth_token_fault``."""

    api = API
    section = "anthropic"
    vendor: AnthropicConfig

    def bad_request(self, message: str) -> Refusal:
        return OAuthError(400, "invalid_request", message)

    def fault_refusal(self, ex: Exchange, fault: Fault) -> Refusal:
        status = fault.status if fault.kind == "status" and fault.status else 529
        if status == 400:
            return OAuthError(400, "invalid_grant", INVALID_GRANT)
        if status == 401:
            return self.invalid_client()
        return fault_error(fault)

    def unreadable_body(self) -> Refusal:
        return OAuthError(400, "invalid_request", "The request body must be a JSON object")

    def missing_parameter(self, name: str) -> Refusal:
        return OAuthError(400, "invalid_request", f"Missing required parameter: {name}")

    def unsupported_grant(self, grant_type: Any) -> Refusal:
        return OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    def invalid_client(self) -> Refusal:
        return OAuthError(401, "invalid_client", "Client authentication failed")

    def grant(self, refresh_token: str, client_id: str | None) -> dict[str, Any]:
        answer = self.tokens.refresh(refresh_token)
        if answer is None:
            raise OAuthError(400, "invalid_grant", INVALID_GRANT)
        return answer
