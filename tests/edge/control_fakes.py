"""In-process fakes of auth and router for the edge's tests: real gRPC, scripted answers."""

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_common import platforms
from switchboard_common.answer_streams import answer_batches

ALLOW = auth_pb2.AuthorizeResponse(
    decision=auth_pb2.DECISION_ALLOW, identity=auth_pb2.KeyIdentity(key_id="k1"),
    allowed_platforms=["openai"])


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self) -> None:
        self.available = True
        self.authenticated = 0
        self.recorded: list[str] = []
        self.records: list[auth_pb2.UsageRecord] = []
        # Keys Authenticate accepts but Authorize refuses; a key id Authorize reports instead of Authenticate's.
        self.deny_on_authorize: set[str] = set()
        self.authorized_key_id = ""

    async def Authenticate(self, request, context):  # type: ignore[no-untyped-def]
        self.authenticated += 1
        if request.credential != "good" and request.credential not in self.deny_on_authorize:
            return auth_pb2.AuthorizeResponse(decision=auth_pb2.DECISION_DENY, reason=auth_pb2.REASON_KEY_INVALID,
                                              message="Invalid API key.")
        return ALLOW

    async def Authorize(self, request, context):  # type: ignore[no-untyped-def]
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        if request.credential in self.deny_on_authorize:
            return auth_pb2.AuthorizeResponse(decision=auth_pb2.DECISION_DENY,
                                              reason=auth_pb2.REASON_MODEL_NOT_ALLOWED, message="Model not allowed.")
        allowed = auth_pb2.AuthorizeResponse()
        allowed.CopyFrom(ALLOW)
        allowed.allowed_platforms[:] = request.platforms
        if self.authorized_key_id:
            allowed.identity.key_id = self.authorized_key_id
        return allowed

    async def RecordUsage(self, request, context):  # type: ignore[no-untyped-def]
        if not self.available:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        self.recorded.extend(record.request_id for record in request.records)
        self.records.extend(request.records)
        return auth_pb2.RecordUsageResponse(accepted=len(request.records))


class FakeRouter(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, account: router_pb2.Account | None = None) -> None:
        self.account = account or router_pb2.Account(id="openai/a", platform="openai")
        self.held: set[str] = set()
        self.issued = 0
        self.pick_delay = 0.0
        self.status = router_pb2.PICK_STATUS_OK
        self.beats: list[router_pb2.HeartbeatRequest] = []
        self.holder_ttl = 30.0  # seconds; the edge beats every third of it
        self.last_pick: router_pb2.PickRequest | None = None
        self.statuses: list[router_pb2.AccountStatus] = []
        self.outcomes: list[router_pb2.ReportOutcomeRequest] = []
        self.outcomes_with_picks = 0  # of `outcomes`, those that came with a batch of picks
        self.max_concurrency = 0  # leases held at once, as the router's slots (0: no bound)
        self.listed = 0

    async def Pick(self, request, context):  # type: ignore[no-untyped-def]
        if request.platforms and self.account.platform not in request.platforms:
            return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_MODEL, message="not served")
        if self.pick_delay:
            await asyncio.sleep(self.pick_delay)
        if self.status != router_pb2.PICK_STATUS_OK:
            return router_pb2.PickResponse(status=self.status, message="no account serves model 'x'")
        if self.account.id in request.exclude_account_ids:  # one account: nothing left to fail over to
            return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_ACCOUNT, message="all failed")
        if self.max_concurrency and len(self.held) >= self.max_concurrency:
            return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_ACCOUNT, message="at its limit")
        self.issued += 1
        self.last_pick = request
        lease = f"lease-{self.issued}"
        self.held.add(lease)
        return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_OK, lease_id=lease,
                                       account=self.account, upstream_model=request.model)

    async def PickBatches(self, batches, context):  # type: ignore[no-untyped-def]
        """The router's stream: each request answered by this fake's `Pick` as soon as it is ready."""
        async for answers in answer_batches(batches, self._batch_picks,
                                            lambda request: self.Pick(request, context), lambda _: None,
                                            lambda responses: router_pb2.PickAnswers(responses=responses)):
            yield answers

    async def _batch_picks(self, batch: router_pb2.PickBatch) -> list[router_pb2.PickRequest]:
        """As the router: the outcomes riding with the batch are applied before its picks."""
        self._settle(batch.outcomes)
        self.outcomes_with_picks += len(batch.outcomes)
        return list(batch.requests)

    def _settle(self, outcomes) -> None:  # type: ignore[no-untyped-def]
        for outcome in outcomes:
            self.held.discard(outcome.lease_id)
        self.outcomes.extend(outcomes)

    async def ReportOutcomes(self, request, context):  # type: ignore[no-untyped-def]
        self._settle(request.outcomes)
        return router_pb2.ReportOutcomeResponse()

    async def ListAccounts(self, request, context):  # type: ignore[no-untyped-def]
        self.listed += 1
        # Unless a test set the pool: one account per platform serving every model (the edge's catalog then
        # offers every platform a route reaches, and Pick alone decides, by the one account it holds).
        statuses = self.statuses or [
            router_pb2.AccountStatus(account=router_pb2.Account(id=f"{platform}/any", platform=platform),
                                     models=["*"], state=router_pb2.ACCOUNT_STATE_READY)
            for platform in platforms.ALL]
        return router_pb2.ListAccountsResponse(accounts=statuses)

    async def Heartbeat(self, request, context):  # type: ignore[no-untyped-def]
        self.beats.append(request)
        reply = router_pb2.HeartbeatResponse(released=0)
        reply.holder_ttl.FromMilliseconds(int(self.holder_ttl * 1000))
        return reply


class FakePool(FakeRouter):
    """Several accounts, picked in order past the excluded ones; outcomes and stored credentials kept."""

    def __init__(self, accounts: list[router_pb2.Account]) -> None:
        super().__init__(accounts[0])
        self.accounts = accounts
        self.stored: list[router_pb2.StoreCredentialRequest] = []

    async def Pick(self, request, context):  # type: ignore[no-untyped-def]
        for account in self.accounts:
            if account.id not in request.exclude_account_ids:
                self.issued += 1
                return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_OK, lease_id=f"lease-{self.issued}",
                                               account=account, upstream_model=request.model)
        return router_pb2.PickResponse(status=router_pb2.PICK_STATUS_NO_ACCOUNT, message="all failed")

    async def StoreCredential(self, request, context):  # type: ignore[no-untyped-def]
        self.stored.append(request)
        return router_pb2.StoreCredentialResponse()


async def serve_fakes(auth: FakeAuth, router: FakeRouter, health: health.aio.HealthServicer | None = None,
                      port: int = 0) -> tuple[grpc.aio.Server, str]:
    """Both fakes on one in-process server (with `health`, if given) on `port` (any free one if 0); returns it
    and its target."""
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
    router_pb2_grpc.add_RouterServiceServicer_to_server(router, server)
    if health is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, f"127.0.0.1:{port}"
