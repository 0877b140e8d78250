"""The OAuth refresh-token grant the sign-in simulators share (Anthropic's ``/v1/oauth/token``, ChatGPT's
``/oauth/token``).

Both endpoints read the same request (a JSON object, or a form-encoded body as RFC 6749 has it, with
``grant_type=refresh_token``, ``refresh_token`` and an optional ``client_id``), check it in the same order,
take no other credential, draw faults only from the section's ``oauth_token_fault`` and answer the token
JSON uncached. A vendor's `RefreshGrantEndpoint` supplies only what differs: its error answers and the
tokens it issues.
"""

from __future__ import annotations

import abc
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from aiohttp import web

from .. import delivery, faults
from ..faults import Fault
from ..pipeline import Endpoint, Exchange, Refusal
from ..settings import VendorConfig

if TYPE_CHECKING:
    from ..config import SimulatorConfig

TokensT = TypeVar("TokensT")


@dataclass(frozen=True, slots=True)
class GrantConfig(VendorConfig):
    """What a section with a token endpoint has: the client ids it accepts (empty = any), the refresh fault."""

    oauth_client_ids: frozenset[str] = frozenset()
    oauth_token_fault: Fault | None = None


def grant_params(ex: Exchange) -> dict[str, Any] | None:
    """The request's parameters: its JSON object, or its form-encoded body."""
    if ex.json_object is not None:
        return ex.json_object
    content_type = ex.request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(urllib.parse.parse_qsl(ex.raw.decode("utf-8", "replace")))
    return None


class RefreshGrantEndpoint(Endpoint, Generic[TokensT]):
    """The refresh-token grant with rotation; faults from ``oauth_token_fault``; plans (refresh token, client id)."""

    vendor: GrantConfig

    def __init__(self, config: SimulatorConfig, tokens: TokensT) -> None:
        super().__init__(config)
        self.tokens = tokens

    def admit(self, ex: Exchange) -> str:
        return ""  # the grant itself is the credential

    def fault_sources(self, ex: Exchange) -> tuple[Mapping[str, Fault], Sequence[Fault]]:
        fault = self.vendor.oauth_token_fault
        return {}, (fault,) if fault is not None else ()

    def streams(self, ex: Exchange) -> bool:
        return False

    @abc.abstractmethod
    def unreadable_body(self) -> Refusal:
        """The vendor's error for a body that is neither a JSON object nor form-encoded."""

    @abc.abstractmethod
    def missing_parameter(self, name: str) -> Refusal:
        """The vendor's error for a missing ``grant_type`` or ``refresh_token``."""

    @abc.abstractmethod
    def unsupported_grant(self, grant_type: Any) -> Refusal:
        """The vendor's error for a grant type other than ``refresh_token``."""

    @abc.abstractmethod
    def invalid_client(self) -> Refusal:
        """The vendor's error for a ``client_id`` not in ``oauth_client_ids``."""

    @abc.abstractmethod
    def grant(self, refresh_token: str, client_id: str | None) -> dict[str, Any]:
        """The token answer for `refresh_token` (which stops working); raises the vendor's error when invalid."""

    def validate(self, ex: Exchange) -> tuple[str, str | None]:
        params = grant_params(ex)
        if params is None:
            raise self.unreadable_body()
        grant_type = params.get("grant_type")
        if not grant_type:
            raise self.missing_parameter("grant_type")
        if grant_type != "refresh_token":
            raise self.unsupported_grant(grant_type)
        refresh_token = params.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise self.missing_parameter("refresh_token")
        client_id = params.get("client_id")
        client_ids = self.vendor.oauth_client_ids
        if client_ids and client_id not in client_ids:
            raise self.invalid_client()
        return refresh_token, client_id if isinstance(client_id, str) else None

    async def reply(self, ex: Exchange, plan: Any, fault: Fault | None) -> web.StreamResponse:
        refresh_token, client_id = plan
        answer = self.grant(refresh_token, client_id)
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        return await delivery.send_body(
            ex.request, 200, headers, orjson.dumps(answer),
            delay=self.config.first_byte_delay + faults.extra_delay(fault),
            disconnect=faults.count(fault, "disconnect") is not None,
        )
