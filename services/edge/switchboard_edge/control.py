"""The edge's side of auth and router: one pair of gRPC channels, admission and reports on them.

`switchboard_edge.admission` decides whether a request may go and where; `switchboard_edge.reports`
hands back leases, usage and credentials off the request path.
"""

import asyncio

import grpc

from switchboard.auth.v1 import auth_pb2_grpc
from switchboard.router.v1 import router_pb2_grpc
from switchboard_edge.admission import Admissions
from switchboard_edge.catalog import ModelCatalog
from switchboard_edge.reports import Reports
from switchboard_edge.spool import UsageSpool


class ControlPlane:
    """The channels to auth and router, and what runs over them."""

    def __init__(
        self,
        auth_target: str,
        router_target: str,
        *,
        rpc_timeout: float,
        usage_flush_seconds: float,
        usage_batch_size: int,
        outcome_flush_seconds: float = 0.02,
        holder: str = "",
        spool: UsageSpool | None = None,
        catalog_refresh_seconds: float = 2.0,
        auth_outage_grace: float = 0.0,
        router_outage_grace: float = 0.0,
    ) -> None:
        options = [("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1),
                   # A restarted replica is reached again within a second or two, not after gRPC's 120 s backoff.
                   ("grpc.initial_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2_000),
                   # Subchannels of its own: another channel in the process backing off from a dead server that
                   # held the same address earlier must not fail this one's calls.
                   ("grpc.use_local_subchannel_pool", 1)]
        self.auth_channel = grpc.aio.insecure_channel(auth_target, options=options)
        self.router_channel = grpc.aio.insecure_channel(router_target, options=options)
        auth = auth_pb2_grpc.AuthServiceStub(self.auth_channel)
        router = router_pb2_grpc.RouterServiceStub(self.router_channel)
        self.reports = Reports(auth, router, rpc_timeout=rpc_timeout, usage_flush_seconds=usage_flush_seconds,
                               usage_batch_size=usage_batch_size, outcome_flush_seconds=outcome_flush_seconds,
                               holder=holder, spool=spool)
        self.admission = Admissions(auth, router, self.reports, rpc_timeout=rpc_timeout, holder=holder,
                                    auth_outage_grace=auth_outage_grace, router_outage_grace=router_outage_grace)
        self.catalog = ModelCatalog()
        self._catalog_refresh = catalog_refresh_seconds
        self._following: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.reports.start()
        loop = asyncio.get_running_loop()
        self._following = [loop.create_task(self.catalog.follow(self.admission.accounts, self._catalog_refresh)),
                           loop.create_task(self.admission.follow_key_changes())]

    async def close(self) -> None:
        """Hands over every outcome and usage record still held, then closes the channels."""
        for task in self._following:
            task.cancel()
        await self.admission.close()
        await self.reports.close()
        await self.auth_channel.close()
        await self.router_channel.close()
