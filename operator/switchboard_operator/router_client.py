"""The router's account API (UpsertAccount, DeleteAccount, ListAccounts) over gRPC, in the operator's terms."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_operator.conditions import Hold, Live, Window

STATES = {
    router_pb2.ACCOUNT_STATE_READY: "ready",
    router_pb2.ACCOUNT_STATE_COOLING: "cooling",
    router_pb2.ACCOUNT_STATE_ERROR: "error",
    router_pb2.ACCOUNT_STATE_DISABLED: "disabled",
}
# Worth retrying later: the router (or its state backend) is not reachable or not ready.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                       grpc.StatusCode.CANCELLED})


@dataclass(frozen=True)
class Listed:
    live: Live
    source: str
    # The credential an edge stored (refreshed OAuth tokens), if it overrides the upserted one.
    stored: tuple[str, Mapping[str, str]] | None


def live_of(status: router_pb2.AccountStatus) -> Live:
    return Live(
        state=STATES.get(status.state, "unknown"),
        in_flight=status.in_flight,
        holds=tuple(Hold(h.family, h.kind, h.until, h.reason) for h in status.holds),
        windows=tuple(Window(w.family, w.name, w.utilization, w.resets_at) for w in status.windows),
    )


class RouterClient:
    def __init__(self, target: str, timeout_seconds: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: router_pb2_grpc.RouterServiceStub | None = None

    def _router(self) -> router_pb2_grpc.RouterServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target)
            self._stub = router_pb2_grpc.RouterServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel, self._stub = None, None

    async def upsert(self, spec: Mapping[str, Any]) -> Live:
        reply = await self._router().UpsertAccount(
            router_pb2.UpsertAccountRequest(spec_json=json.dumps(spec, sort_keys=True)), timeout=self.timeout)
        return live_of(reply.status)

    async def delete(self, account_id: str) -> bool:
        reply = await self._router().DeleteAccount(router_pb2.DeleteAccountRequest(account_id=account_id),
                                                   timeout=self.timeout)
        return bool(reply.deleted)

    async def list(self, platform: str = "") -> dict[str, Listed]:
        reply = await self._router().ListAccounts(
            router_pb2.ListAccountsRequest(platform=platform, stored_credentials=True), timeout=self.timeout)
        return {
            s.account.id: Listed(
                live_of(s), s.source,
                (s.stored_credential.api_key, dict(s.stored_credential.secrets))
                if s.HasField("stored_credential") else None)
            for s in reply.accounts
        }
