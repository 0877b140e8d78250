"""Fresh OAuth access tokens for claude-official accounts.

A token is refreshed with the account's refresh token shortly before it expires (`oauth_refresh_margin_
seconds`) and once after the upstream refuses it (401). However many requests wait, one refresh per
account is in flight. The new credential goes to the router (`StoreCredential`), which persists it and
hands it to every edge with later picks; a refresh that fails puts the account in error there, and the
request fails over. The vendor rotates refresh tokens: the spent one must never be used again, so the
newest credential this edge knows wins over an older one a pick still carries.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.reports import Reports
from switchboard_edge.upstream_http import Upstreams

log = logging.getLogger(__name__)


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
    def __init__(self, reports: Reports, upstreams: Upstreams, *, token_url: str, client_id: str,
                 margin_seconds: float, timeout_seconds: float = 30.0) -> None:
        self._reports = reports
        self._upstreams = upstreams
        self._token_url = token_url
        self._client_id = client_id
        self._margin = margin_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # Account id -> the newest tokens this edge knows; refreshes in flight.
        self._known: dict[str, Tokens] = {}
        self._refreshing: dict[str, asyncio.Future[Tokens]] = {}

    async def fresh(self, account: router_pb2.Account, *, refused: str = "") -> router_pb2.Account:
        """The account with a usable access token. `refused`: the token the upstream just refused (401),
        which forces a refresh unless another request already replaced it."""
        tokens = self._newest(account)
        stale = not tokens.access_token or tokens.expires_at - time.time() < self._margin
        if stale or (refused and refused == tokens.access_token):
            tokens = await self._refresh(account, tokens)
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

    async def _refresh(self, account: router_pb2.Account, tokens: Tokens) -> Tokens:
        waiting = self._refreshing.get(account.id)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self._refreshing[account.id] = waiting
            task = asyncio.get_running_loop().create_task(self._run_refresh(account, tokens, waiting))
            task.add_done_callback(lambda _: self._refreshing.pop(account.id, None))
        return await asyncio.shield(waiting)

    async def _run_refresh(self, account: router_pb2.Account, tokens: Tokens,
                           result: "asyncio.Future[Tokens]") -> None:
        try:
            fresh = await self._request(account, tokens.refresh_token)
        except RefreshFailed as exc:
            log.warning("OAuth refresh for account %s failed: %s", account.id, exc)
            self._reports.store_credential(account.id, error=f"OAuth refresh failed: {exc}")
            result.set_exception(exc)
            result.exception()  # retrieved here: waiters may all have gone
            return
        self._known[account.id] = fresh
        credential = router_pb2.Credential()
        credential.CopyFrom(account.credential)
        _write(credential, fresh)
        self._reports.store_credential(account.id, credential=credential)
        log.info("OAuth access token of account %s refreshed", account.id)
        result.set_result(fresh)

    async def _request(self, account: router_pb2.Account, refresh_token: str) -> Tokens:
        if not refresh_token:
            raise RefreshFailed("the account has no refresh token")
        payload = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self._client_id}
        try:
            async with self._upstreams.session(account.proxy_url).post(
                self._token_url, data=orjson.dumps(payload), timeout=self._timeout,
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
            access, expires_in = answer["access_token"], float(answer.get("expires_in", 3600))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise RefreshFailed("token endpoint answered without an access token") from None
        # Rotation: the answer carries the next refresh token; without one the old one stays valid.
        return Tokens(str(access), str(answer.get("refresh_token") or refresh_token), time.time() + expires_in)


def _write(credential: router_pb2.Credential, tokens: Tokens) -> None:
    credential.secrets["access_token"] = tokens.access_token
    credential.secrets["refresh_token"] = tokens.refresh_token
    credential.secrets["expires_at"] = str(int(tokens.expires_at))


def _error_code(body: bytes) -> str:
    """The OAuth error code (e.g. invalid_grant), which is safe to show; never the body itself."""
    try:
        code = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
