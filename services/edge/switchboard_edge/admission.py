"""Admission: the key checked, then Authorize and Pick, in at most one round of RPCs; never a leaked lease.

A key the edge has not seen valid in the last `_IDENTITY_TTL` seconds is
authenticated (`Authenticate`, key only) before the request body is read.
Auth says how long an ALLOW may be reused (`reuse_for`); while it holds, only
Pick is called. Otherwise Authorize and Pick run concurrently: Pick needs the
key's identity and groups, which the edge remembers (by key digest, never the
key), and it re-picks in the rare case they changed. Both go over one long-lived
stream each (`call_streams`). Every Pick names this edge as the lease holder. A lease
(or a concurrency admission) answered after its request was given up (the client
left, auth failed) is returned when it lands. Auth pushes key changes
(`follow_key_changes`): a changed key's remembered identity and decisions are dropped at once.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import grpc

from switchboard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_edge.call_streams import Batches, CallStream
from switchboard_edge.durations import seconds_of
from switchboard_edge.errors import (
    AuthenticationFailed,
    ModelNotFound,
    NoAvailableAccount,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    SwitchboardError,
)
from switchboard_edge.limit_headers import limit_headers
from switchboard_edge.outage import LastDecisions, LastPicks
from switchboard_edge.picks import Picker
from switchboard_edge.reports import Reports

log = logging.getLogger(__name__)

_DENIALS: dict[int, type[SwitchboardError]] = {
    auth_pb2.REASON_KEY_MISSING: AuthenticationFailed,
    auth_pb2.REASON_KEY_INVALID: AuthenticationFailed,
    auth_pb2.REASON_KEY_DISABLED: AuthenticationFailed,
    auth_pb2.REASON_KEY_EXPIRED: AuthenticationFailed,
    auth_pb2.REASON_PLATFORM_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_MODEL_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_CLIENT_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_SOURCE_NOT_ALLOWED: PermissionDenied,
    auth_pb2.REASON_RATE_LIMITED: RateLimited,
    auth_pb2.REASON_CONCURRENCY_LIMITED: RateLimited,
    auth_pb2.REASON_QUOTA_EXCEEDED: QuotaExceeded,
}
_IDENTITY_CACHE_SIZE = 10_000
# How long a key seen valid may send bodies without being authenticated again.
_IDENTITY_TTL = 30.0
_AUTH_UNAVAILABLE = "The gateway cannot check keys right now; try again shortly."


def denial(response: auth_pb2.AuthorizeResponse) -> SwitchboardError:
    """The client-facing error for a DENY decision (401 / 403 / 429)."""
    error_class = _DENIALS.get(response.reason, AuthenticationFailed)
    retry_after = seconds_of(response.retry_after) if response.HasField("retry_after") else None
    error = error_class(response.message or "Request not authorized.", retry_after=retry_after)
    error.headers = limit_headers(response.limits)
    return error


class AuthUndecided(ServiceUnavailable):
    """Auth was reached and answered that it cannot decide now (a store it needs is down, or its limits are set
    to refuse without Redis): a 503 the edge passes on, never ridden out on its last decisions."""


@dataclass(frozen=True, slots=True)
class Admission:
    identity: auth_pb2.KeyIdentity
    # The requested platforms this key may use; failover stays within them.
    platforms: tuple[str, ...]
    pick: router_pb2.PickResponse
    # How many of `platforms`, from the front, speak the client's own format (ranked first by the router).
    preferred: int = 0
    # A limited key's concurrency admission (returned with the usage record) and its limits as they stand.
    admission_id: str = ""
    limits: tuple[auth_pb2.LimitStatus, ...] = ()


def preferred_count(platforms: Sequence[str], natives: frozenset[str]) -> int:
    """How many platforms, from the front of the list, are natives of the client's format (natives come first)."""
    return sum(1 for platform in platforms if platform in natives)


class Admissions:
    def __init__(self, auth: auth_pb2_grpc.AuthServiceStub, router: router_pb2_grpc.RouterServiceStub,
                 reports: Reports, *, rpc_timeout: float, holder: str, auth_outage_grace: float = 0.0,
                 router_outage_grace: float = 0.0) -> None:
        self._auth = auth
        self._router = router
        self._reports = reports
        self._timeout = rpc_timeout
        self.holder = holder
        self._picker = Picker(router, timeout=rpc_timeout, release=reports.release, outcomes=reports.take_outcomes)

        def orphan(answer: auth_pb2.AuthorizeResponse) -> None:
            reports.release_admission(answer.identity.key_id, answer.admission_id)

        self._authorizer: CallStream[auth_pb2.AuthorizeRequest, auth_pb2.AuthorizeResponse] = CallStream(
            auth.AuthorizeBatches, auth.Authorize, timeout=rpc_timeout, orphan=orphan, service="auth",
            unavailable=_AUTH_UNAVAILABLE, batches=Batches(_pack_authorize, _unpack_authorize))
        # Key digest -> (monotonic expiry, identity) from its last Authenticate/Authorize; lets Pick run
        # alongside Authorize, and a known key send its body without another round trip.
        self._identities: dict[bytes, tuple[float, auth_pb2.KeyIdentity]] = {}
        # (key digest, platforms, model) -> (monotonic expiry, ALLOW response) while auth lets us reuse it.
        self._decisions: dict[tuple[bytes, tuple[str, ...], str], tuple[float, auth_pb2.AuthorizeResponse]] = {}
        # The last answers of each service, ridden on while it cannot be reached (`outage`).
        self._last_decisions = LastDecisions(auth_outage_grace)
        self._last_picks = LastPicks(router_outage_grace)

    async def authenticate(self, credential: str, client: auth_pb2.ClientMetadata) -> None:
        """Refuses an invalid key (401) before its body is read; free for a key seen valid recently."""
        digest = hashlib.sha256(credential.encode()).digest()
        known = self._identities.get(digest)
        if known is not None and known[0] > time.monotonic():
            return
        try:
            reply = await self.key(credential, client)
        except ServiceUnavailable:
            if self._last_decisions.admits_key(digest):
                return
            raise
        self._remember(digest, reply.identity)
        self._last_decisions.seen(digest)

    async def key(self, credential: str, client: auth_pb2.ClientMetadata) -> auth_pb2.AuthorizeResponse:
        """The key's identity and permissions, asked of auth every time (listings use it as it is)."""
        try:
            reply = await self._auth.Authenticate(
                auth_pb2.AuthenticateRequest(credential=credential, client=client), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("auth unavailable: %s", exc.code().name)
            raise ServiceUnavailable(_AUTH_UNAVAILABLE) from None
        if reply.decision != auth_pb2.DECISION_ALLOW:
            raise denial(reply)
        return reply

    async def accounts(self) -> list[router_pb2.AccountStatus]:
        """The router's account pool, without credentials."""
        try:
            reply = await self._router.ListAccounts(router_pb2.ListAccountsRequest(), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("router unavailable: %s", exc.code().name)
            raise ServiceUnavailable("The gateway cannot read its accounts right now; try again shortly.") from None
        return list(reply.accounts)

    async def admit(
        self,
        credential: str,
        platforms: Sequence[str],
        model: str,
        client: auth_pb2.ClientMetadata,
        stream: bool,
        natives: frozenset[str] = frozenset(),
    ) -> Admission:
        """Authorize and pick together. Raises the client-facing error on any refusal; never leaks a lease.
        `natives`: the platforms of the client's own format, which the router ranks first."""
        digest = hashlib.sha256(credential.encode()).digest()
        platforms = tuple(platforms)
        reused = self._decisions.get((digest, platforms, model))
        if reused is not None and reused[0] > time.monotonic():
            auth = reused[1]
            preferred = preferred_count(auth.allowed_platforms, natives)
            pick = await self.pick(auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id,
                                   preferred=preferred)
            return Admission(auth.identity, tuple(auth.allowed_platforms), checked(pick), preferred)
        request = auth_pb2.AuthorizeRequest(
            credential=credential, platforms=platforms, model=model, client=client, stream=stream
        )
        known = self._identities.get(digest)
        if known is None:
            auth = await self._decide(request, digest)
            if auth.decision != auth_pb2.DECISION_ALLOW:
                raise denial(auth)
            self._remember(digest, auth.identity)
            pick = await self.pick(auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id,
                                   preferred=preferred_count(auth.allowed_platforms, natives))
        else:
            auth, pick = await self._authorize_and_pick(request, digest, known[1],
                                                        preferred_count(platforms, natives))
            stale = auth.identity.key_id != known[1].key_id or auth.identity.groups != known[1].groups
            self._remember(digest, auth.identity)
            off_limits = pick.status == router_pb2.PICK_STATUS_OK and (
                pick.account.platform not in auth.allowed_platforms
            )
            if stale or off_limits:
                self.release(pick)
                pick = await self.pick(
                    auth.allowed_platforms, model, auth.identity, client.session_id, client.request_id,
                    preferred=preferred_count(auth.allowed_platforms, natives),
                )
        self._reuse(digest, platforms, model, auth)
        try:
            found = checked(pick)
        except SwitchboardError:
            self._reports.release_admission(auth.identity.key_id, auth.admission_id)
            raise
        return Admission(auth.identity, tuple(auth.allowed_platforms), found,
                         preferred_count(auth.allowed_platforms, natives), auth.admission_id, tuple(auth.limits))

    async def _authorize_and_pick(
        self, request: auth_pb2.AuthorizeRequest, digest: bytes, identity: auth_pb2.KeyIdentity, preferred: int
    ) -> tuple[auth_pb2.AuthorizeResponse, router_pb2.PickResponse]:
        """Both calls at once; if either fails (or the caller gives up), a lease already taken is returned."""
        loop = asyncio.get_running_loop()
        client = request.client
        authorizing = loop.create_task(self._decide(request, digest))
        picking = loop.create_task(
            self._pick(request.platforms, request.model, identity, client.session_id, client.request_id,
                       preferred=preferred))
        try:
            await asyncio.wait((authorizing, picking))
        except asyncio.CancelledError:
            authorizing.cancel()
            picking.add_done_callback(self._release_done)
            raise
        if authorizing.exception() is not None or authorizing.result().decision != auth_pb2.DECISION_ALLOW:
            self._release_done(picking)
            error = authorizing.exception()
            if error is not None:
                raise error
            raise denial(authorizing.result())
        return authorizing.result(), picking.result()

    def _release_done(self, picking: "asyncio.Task[router_pb2.PickResponse]") -> None:
        if not picking.cancelled() and picking.exception() is None:
            self.release(picking.result())

    def _reuse(self, digest: bytes, platforms: tuple[str, ...], model: str,
               auth: auth_pb2.AuthorizeResponse) -> None:
        if not auth.HasField("reuse_for"):
            return
        seconds = seconds_of(auth.reuse_for)
        if seconds <= 0:
            return
        if len(self._decisions) >= _IDENTITY_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[(digest, platforms, model)] = (time.monotonic() + seconds, auth)

    async def pick(
        self,
        platforms: Sequence[str],
        model: str,
        identity: auth_pb2.KeyIdentity,
        session: str,
        request_id: str,
        exclude: Sequence[str] = (),
        preferred: int = 0,
    ) -> router_pb2.PickResponse:
        """A Pick whose lease is returned when it lands if the caller gave up waiting for it."""
        picking = asyncio.get_running_loop().create_task(
            self._pick(platforms, model, identity, session, request_id, exclude, preferred))
        try:
            return await asyncio.shield(picking)
        except asyncio.CancelledError:
            picking.add_done_callback(self._release_done)
            raise

    async def _pick(
        self,
        platforms: Sequence[str],
        model: str,
        identity: auth_pb2.KeyIdentity,
        session: str,
        request_id: str,
        exclude: Sequence[str] = (),
        preferred: int = 0,
    ) -> router_pb2.PickResponse:
        request = router_pb2.PickRequest(
            platforms=platforms,
            model=model,
            key_id=identity.key_id,
            groups=identity.groups,
            session_hint=session,
            exclude_account_ids=exclude,
            request_id=request_id,
            holder=self.holder,
            preferred=preferred,
        )
        try:
            response = await self._picker.pick(request)
            if response.lease_id:
                self._reports.hold(response.lease_id)
        except ServiceUnavailable:
            recalled = self._last_picks.recall(platforms, model, exclude, session)
            if recalled is None:
                raise
            return recalled
        self._last_picks.remember(platforms, model, response, session)
        return response

    def _remember(self, digest: bytes, identity: auth_pb2.KeyIdentity) -> None:
        if len(self._identities) >= _IDENTITY_CACHE_SIZE:
            self._identities.clear()
        self._identities[digest] = (time.monotonic() + _IDENTITY_TTL, identity)

    async def _decide(self, request: auth_pb2.AuthorizeRequest, digest: bytes) -> auth_pb2.AuthorizeResponse:
        """Auth's decision; while auth cannot be reached, its last ALLOW for the same request within the grace."""
        platforms = tuple(request.platforms)
        try:
            auth = await self._authorize(request)
        except AuthUndecided:
            raise  # auth answered: it cannot decide now (e.g. limits it is set to refuse without Redis)
        except ServiceUnavailable:
            recalled = self._last_decisions.recall(digest, platforms, request.model)
            if recalled is None:
                raise
            return recalled
        self._last_decisions.remember(digest, platforms, request.model, auth)
        return auth

    async def _authorize(self, request: auth_pb2.AuthorizeRequest) -> auth_pb2.AuthorizeResponse:
        """Over the long-lived `AuthorizeBatches` stream (`switchboard_edge.call_streams`)."""
        response = await self._authorizer.call(request)
        if response.unavailable:
            log.warning("auth unavailable: %s", response.message)
            raise AuthUndecided(_AUTH_UNAVAILABLE)
        return response

    def release(self, pick: router_pb2.PickResponse) -> None:
        self._reports.release(pick)

    def forget(self, key_ids: Collection[str] | None) -> None:
        """Auth says these keys changed (None: any may have): what is remembered of them is dropped, so the next
        request of a disabled, deleted or rotated key is asked about again."""
        if key_ids is None:
            # Not the last decisions (`outage`): a broken change stream is how an auth outage begins.
            self._identities.clear()
            self._decisions.clear()
            return
        self._last_decisions.forget(key_ids)
        for digest in [d for d, (_, identity) in self._identities.items() if identity.key_id in key_ids]:
            del self._identities[digest]
        for decided in [k for k, (_, auth) in self._decisions.items() if auth.identity.key_id in key_ids]:
            del self._decisions[decided]

    async def follow_key_changes(self, retry_seconds: float = 1.0) -> None:
        """Runs until cancelled: listens to auth's key changes, again after any break (forgetting everything
        then, as changes may have been missed)."""
        while True:
            try:
                async for event in self._auth.WatchKeyChanges(auth_pb2.WatchKeyChangesRequest()):
                    self.forget(None if event.everything else frozenset(event.key_ids))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # an older auth: its caches' TTLs are all there is
                    log.info("auth does not push key changes")
                    return
                log.warning("auth key changes stream ended: %s", exc.code().name)
            self.forget(None)
            await asyncio.sleep(retry_seconds)

    async def close(self) -> None:
        await asyncio.gather(self._picker.close(), self._authorizer.close())


def checked(pick: router_pb2.PickResponse) -> router_pb2.PickResponse:
    """The pick if it found an account; else the client-facing error: 404 for a model nobody serves, else 503."""
    if pick.status == router_pb2.PICK_STATUS_OK:
        return pick
    if pick.status == router_pb2.PICK_STATUS_NO_MODEL:
        return _raise(ModelNotFound(pick.message or "No account serves this model."))
    retry_after = seconds_of(pick.retry_after) if pick.HasField("retry_after") else None
    return _raise(NoAvailableAccount(pick.message or "No upstream account is available for this model.",
                                     retry_after=retry_after))


def _raise(error: SwitchboardError) -> router_pb2.PickResponse:
    raise error


def _pack_authorize(requests: list[auth_pb2.AuthorizeRequest]) -> auth_pb2.AuthorizeBatch:
    return auth_pb2.AuthorizeBatch(requests=requests)


def _unpack_authorize(answers: auth_pb2.AuthorizeAnswers) -> Iterable[auth_pb2.AuthorizeResponse]:
    return answers.responses
