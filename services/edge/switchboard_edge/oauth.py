"""Fresh OAuth access tokens for accounts that sign in (claude-official; openai-responses with a ChatGPT sign-in).

Each account's platform names its issuer (`Platform.sign_in`); the issuer's `TokenEndpoint` says where the
token is renewed, as which client, and how the answer is read: Anthropic's answer carries `expires_in`;
OpenAI's (auth.openai.com, as Codex CLI refreshes) is `{"id_token", "access_token", "refresh_token"}` with
`expires_in` optional, so the expiry is then read from the access token's JWT `exp` claim (payload only,
no signature check: the vendor checks it), else a conservative hour.

A token is refreshed with the account's refresh token shortly before it expires
(`oauth_refresh_margin_seconds`) and once after the upstream refuses it (401). However many requests
wait, one refresh per account is in flight (per edge). The new credential goes to the router
(`StoreCredential`), which persists it, shares it with the other router replicas, and hands it to every edge
with later picks. Edges do not coordinate their refreshes: when two refresh at once, the second one's refresh
token is spent (`invalid_grant`), so a refused refresh first asks the router for the account's credential
(`GetCredential`) and uses it when another edge stored a newer one. Only a refresh that fails with nothing
newer there puts the account in error at the router, and the request fails over. The vendor rotates refresh
tokens: the spent one must never be used again, so the newest credential this edge knows wins over an older
one a pick still carries.
"""

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.reports import Reports
from switchboard_edge.settings import EdgeSettings
from switchboard_edge.upstream.base import ANTHROPIC_SIGN_IN, CHATGPT_SIGN_IN
from switchboard_edge.upstream_http import Upstreams

log = logging.getLogger(__name__)


# The expiry assumed when the answer says none and the token is no JWT with `exp`.
DEFAULT_LIFETIME_SECONDS = 3600.0
# After a refused refresh the router is asked this long after it, and again: another edge that refreshed first
# may still be storing its credential.
REREAD_DELAYS = (0.0, 0.5)
# What Codex CLI asks for when it refreshes a ChatGPT sign-in.
OPENAI_SCOPE = "openid profile email"


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """One issuer's token endpoint: where, as which client, what the refresh request adds to the grant
    (`{"grant_type": "refresh_token", "refresh_token", "client_id"}`, JSON), how the answer's expiry is read."""

    url: str
    client_id: str
    # Further fields of the refresh request (OpenAI's `scope`).
    extra: Mapping[str, str] = field(default_factory=dict)
    # Without `expires_in`, the access token's JWT `exp` claim says the expiry (OpenAI).
    expiry_from_jwt: bool = False

    def request(self, refresh_token: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id,
                **self.extra}

    def expires_at(self, answer: Mapping[str, Any], access_token: str, now: float) -> float:
        expires_in = answer.get("expires_in")
        if expires_in is not None or not self.expiry_from_jwt:
            return now + float(expires_in if expires_in is not None else DEFAULT_LIFETIME_SECONDS)
        exp = jwt_expiry(access_token)
        return exp if exp is not None else now + DEFAULT_LIFETIME_SECONDS


def anthropic_endpoint(url: str, client_id: str) -> TokenEndpoint:
    return TokenEndpoint(url, client_id)


def openai_endpoint(url: str, client_id: str) -> TokenEndpoint:
    return TokenEndpoint(url, client_id, extra={"scope": OPENAI_SCOPE}, expiry_from_jwt=True)


def token_endpoints(settings: EdgeSettings) -> dict[str, TokenEndpoint]:
    """Each sign-in's token endpoint (`Platform.sign_in` names one); a new issuer is one entry here."""
    return {
        ANTHROPIC_SIGN_IN: anthropic_endpoint(settings.oauth_token_url, settings.oauth_client_id),
        CHATGPT_SIGN_IN: openai_endpoint(settings.codex_oauth_token_url, settings.codex_oauth_client_id),
    }


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (POSIX seconds) of a JWT's payload, or None when the token is no such JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= 0:
        return None
    return float(exp)


class RefreshFailed(Exception):
    """The account's access token could not be renewed (the reason is safe to log; no secret in it)."""


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float

    @classmethod
    def of(cls, account: router_pb2.Account) -> "Tokens":
        secrets = account.credential.secrets
        try:
            expires_at = float(secrets.get("expires_at") or 0)
        except ValueError:
            expires_at = 0.0
        return cls(secrets.get("access_token", ""), secrets.get("refresh_token", ""), expires_at)


class OAuthTokens:
    """`token_url` and `client_id`: the endpoint of calls that name none (claude-official's, Anthropic's)."""

    def __init__(self, reports: Reports, upstreams: Upstreams, *, token_url: str, client_id: str,
                 margin_seconds: float, timeout_seconds: float = 30.0,
                 reread_delays: tuple[float, ...] = REREAD_DELAYS) -> None:
        self._reports = reports
        self._reread_delays = reread_delays
        self._upstreams = upstreams
        self._default = anthropic_endpoint(token_url, client_id)
        self._margin = margin_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # Account id -> the newest tokens this edge knows; refreshes in flight.
        self._known: dict[str, Tokens] = {}
        self._refreshing: dict[str, asyncio.Future[Tokens]] = {}

    async def fresh(self, account: router_pb2.Account, *, refused: str = "",
                    endpoint: TokenEndpoint | None = None) -> router_pb2.Account:
        """The account with a usable access token. `refused`: the token the upstream just refused (401),
        which forces a refresh unless another request already replaced it. `endpoint`: the account's
        issuer's (by default Anthropic's)."""
        tokens = self._newest(account)
        stale = not tokens.access_token or tokens.expires_at - time.time() < self._margin
        if stale or (refused and refused == tokens.access_token):
            tokens = await self._refresh(account, tokens, endpoint or self._default)
        if tokens.access_token == account.credential.secrets.get("access_token"):
            return account
        updated = router_pb2.Account()
        updated.CopyFrom(account)
        _write(updated.credential, tokens)
        return updated

    def _newest(self, account: router_pb2.Account) -> Tokens:
        offered = Tokens.of(account)
        known = self._known.get(account.id)
        if known is None or offered.expires_at > known.expires_at:
            self._known[account.id] = offered
            return offered
        return known

    async def _refresh(self, account: router_pb2.Account, tokens: Tokens, endpoint: TokenEndpoint) -> Tokens:
        waiting = self._refreshing.get(account.id)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self._refreshing[account.id] = waiting
            task = asyncio.get_running_loop().create_task(self._run_refresh(account, tokens, endpoint, waiting))
            task.add_done_callback(lambda _: self._refreshing.pop(account.id, None))
        return await asyncio.shield(waiting)

    async def _run_refresh(self, account: router_pb2.Account, tokens: Tokens, endpoint: TokenEndpoint,
                           result: "asyncio.Future[Tokens]") -> None:
        try:
            fresh = await self._request(account, tokens.refresh_token, endpoint)
        except RefreshFailed as exc:
            try:
                elsewhere = await self._refreshed_elsewhere(account, tokens, endpoint, exc)
            except Exception:  # the waiters must have an answer whatever happens
                log.exception("OAuth refresh for account %s: the router's credential could not be read", account.id)
                elsewhere = None
            if elsewhere is not None:
                self._known[account.id] = elsewhere
                result.set_result(elsewhere)
                return
            log.warning("OAuth refresh for account %s failed: %s", account.id, exc)
            self._reports.store_credential(account.id, error=f"OAuth refresh failed: {exc}")
            result.set_exception(exc)
            result.exception()  # retrieved here: waiters may all have gone
            return
        self._known[account.id] = fresh
        self._store(account, fresh)
        result.set_result(fresh)

    def _store(self, account: router_pb2.Account, fresh: Tokens) -> None:
        credential = router_pb2.Credential()
        credential.CopyFrom(account.credential)
        _write(credential, fresh)
        self._reports.store_credential(account.id, credential=credential)
        log.info("OAuth access token of account %s refreshed", account.id)

    async def _refreshed_elsewhere(self, account: router_pb2.Account, tried: Tokens, endpoint: TokenEndpoint,
                                   failure: RefreshFailed) -> Tokens | None:
        """After a refused refresh: the tokens another edge refreshed first, as the router has them now (it
        rotated the refresh token this one tried, hence `invalid_grant`); None when the router has none newer.
        Its access token is used while it lives, else refreshed once with its refresh token."""
        for delay in self._reread_delays:
            await asyncio.sleep(delay)  # the other edge's StoreCredential may still be on its way
            credential = await self._reports.current_credential(account.id)
            if credential is None:
                return None
            current = Tokens.of(router_pb2.Account(credential=credential))
            if not current.refresh_token or current.refresh_token == tried.refresh_token:
                continue
            log.info("OAuth refresh for account %s refused (%s): another edge refreshed it first, its credential "
                     "is used", account.id, failure)
            if current.access_token and current.expires_at - time.time() >= self._margin:
                return current
            try:
                fresh = await self._request(account, current.refresh_token, endpoint)
            except RefreshFailed as exc:
                log.warning("OAuth refresh for account %s with the router's newer credential failed too: %s",
                            account.id, exc)
                return None
            self._store(account, fresh)
            return fresh
        return None

    async def _request(self, account: router_pb2.Account, refresh_token: str, endpoint: TokenEndpoint) -> Tokens:
        if not refresh_token:
            raise RefreshFailed("the account has no refresh token")
        payload = endpoint.request(refresh_token)
        try:
            async with self._upstreams.session(account.proxy_url).post(
                endpoint.url, data=orjson.dumps(payload), timeout=self._timeout,
                headers={"content-type": "application/json", "accept": "application/json"},
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RefreshFailed(f"token endpoint unreachable ({type(exc).__name__})") from None
        if status != 200:
            raise RefreshFailed(f"token endpoint answered HTTP {status}{_error_code(body)}")
        try:
            answer = orjson.loads(body)
            access = answer["access_token"]
            if not isinstance(access, str) or not access:
                raise ValueError
            expires_at = endpoint.expires_at(answer, access, time.time())
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise RefreshFailed("token endpoint answered without an access token") from None
        # Rotation: the answer carries the next refresh token; without one the old one stays valid.
        return Tokens(access, str(answer.get("refresh_token") or refresh_token), expires_at)


def _write(credential: router_pb2.Credential, tokens: Tokens) -> None:
    credential.secrets["access_token"] = tokens.access_token
    credential.secrets["refresh_token"] = tokens.refresh_token
    credential.secrets["expires_at"] = str(int(tokens.expires_at))


def _error_code(body: bytes) -> str:
    """The OAuth error code (e.g. invalid_grant; OpenAI's `error.code`, e.g. refresh_token_reused), which is
    safe to show; never the body itself."""
    try:
        code = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    if isinstance(code, dict):
        code = code.get("code")
    return f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
