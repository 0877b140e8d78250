"""Boot the router: settings, logging, the account pool and its reload task, then serve.

Exits with status 2 when a lease TTL setting is not positive, SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE is
neither local nor refuse, Redis (when set) cannot be reached at start, or the accounts file
or the stored-credentials file is invalid at start (a missing accounts file starts
an empty pool and is picked up once it appears; a missing credentials file is an
empty one).
"""

import asyncio
import contextlib
import sys

import uvloop
from prometheus_client import REGISTRY

from switchboard_common import logs
from switchboard_common.grpc_server import serve
from switchboard_common.redis_outage import checked_policy
from switchboard_router import metrics
from switchboard_router import settings as router_settings
from switchboard_router.credential_overlay import CredentialOverlay
from switchboard_router.errors import AccountsInvalid, CredentialsFileInvalid
from switchboard_router.file_source import YamlFileSource
from switchboard_router.leases import LeaseTable
from switchboard_router.metrics import AccountGauges
from switchboard_router.pool import AccountPool
from switchboard_router.server import SERVICE_NAME, RouterServicer
from switchboard_router.state import FallbackState, MemoryState, RedisState, RouterState, StateUnavailable


async def main() -> int:
    log = logs.setup("router")
    settings = router_settings.load()
    try:
        leases = LeaseTable(settings.lease_ttl_seconds, holder_ttl_seconds=settings.holder_ttl_seconds)
    except ValueError as exc:
        log.error("SWITCHBOARD_ROUTER_LEASE_TTL_SECONDS / _HOLDER_TTL_SECONDS: %s", exc)
        return 2
    source = YamlFileSource(settings.accounts_file, interval_seconds=settings.reload_interval_seconds)
    try:
        overlay = CredentialOverlay(router_settings.credentials_path(settings))
        pool = AccountPool(source.load(), overlay)
    except CredentialsFileInvalid as exc:
        log.error("credentials file %s: %s", exc.source, exc.problem)
        return 2
    except AccountsInvalid as exc:
        for problem in exc.problems:
            log.error("accounts file %s: %s", exc.source, problem)
        return 2
    try:
        checked_policy(settings.redis_unavailable, "SWITCHBOARD_ROUTER_REDIS_UNAVAILABLE")
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    state: RouterState = MemoryState()
    if settings.redis_url:
        shared = RedisState(settings.redis_url, settings.redis_namespace,
                            timeout_seconds=settings.redis_timeout_seconds)
        state = FallbackState(shared, policy=settings.redis_unavailable, degraded=metrics.REDIS_DEGRADED,
                              degraded_operations=metrics.REDIS_DEGRADED_OPERATIONS)
    try:
        await state.start()
    except StateUnavailable as exc:
        log.error("SWITCHBOARD_ROUTER_REDIS_URL: %s", exc)
        return 2
    servicer = RouterServicer(pool, leases, state=state, window_threshold=settings.window_threshold,
                              breaker_threshold=settings.breaker_threshold,
                              breaker_open_seconds=settings.breaker_open_seconds,
                              session_ttl_seconds=settings.session_ttl_seconds)
    REGISTRY.register(AccountGauges(lambda: pool.snapshot.accounts, state.health, state.in_flight))
    watchers = [asyncio.create_task(source.watch(pool.replace), name="accounts-reload"),
                asyncio.create_task(servicer.managed.watch(), name="managed-accounts")]

    async def stop_watching() -> None:
        for watcher in watchers:
            watcher.cancel()
        for watcher in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await state.close()

    await serve(
        registrars=[servicer.register],
        service_names=[SERVICE_NAME],
        address=settings.listen,
        metrics_port=settings.metrics_port,
        on_stop=stop_watching,
    )
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
