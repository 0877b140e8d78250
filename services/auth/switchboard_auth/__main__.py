"""Boot and shutdown of the auth service: `python -m switchboard_auth`.

Loads the price table, opens the stores, serves AuthService (plus health,
reflection and metrics via `switchboard_common.grpc_server`) until
SIGTERM/SIGINT, then closes the stores. The stores are PostgreSQL when
`SWITCHBOARD_AUTH_DATABASE_URL` is set, else the SQLite file at
`SWITCHBOARD_AUTH_DB_PATH` (`store.open_stores`); either schema is migrated on
start. While PostgreSQL cannot be reached at start, auth keeps trying (backoff
0.5 s doubling to 5 s) for up to `SWITCHBOARD_AUTH_DATABASE_WAIT_SECONDS`, not
listening yet (no gRPC, health or metrics port until connected). Exits with
status 2 when the price file (`SWITCHBOARD_AUTH_PRICES_FILE`) cannot be used,
every problem in it logged, and with status 3 when the database cannot be
(still unreachable after that wait; or at once: login refused, unknown
database, written by a newer build).
"""

import asyncio
import contextlib
import logging
import sys
import time

import uvloop

from switchboard_auth import settings as auth_settings
from switchboard_auth.admin import ADMIN_SERVICE_NAME, AdminServicer
from switchboard_auth.errors import DatabaseUnreachable, StoreError
from switchboard_auth.keys import KeyHasher
from switchboard_auth.limits import FallbackLimiter, Limiter, MemoryLimiter, RedisLimiter, spent_in
from switchboard_auth.pricing import PriceFileError, PriceTable, load_prices
from switchboard_auth.service import SERVICE_NAME, AuthServicer
from switchboard_auth.store import Stores, open_stores
from switchboard_common import grpc_server, logs
from switchboard_common.redis_outage import checked_policy

log = logging.getLogger("switchboard_auth")

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0


async def open_stores_waiting(config: auth_settings.AuthSettings) -> Stores:
    """`open_stores`, tried again with capped exponential backoff while the database is unreachable, for up to
    `database_wait_seconds`; any other StoreError (login refused, schema too new, ...) is raised at once."""
    started = time.monotonic()
    deadline = started + max(config.database_wait_seconds, 0.0)
    delay = FIRST_RETRY_SECONDS
    waiting = False
    while True:
        try:
            opened = await open_stores(config.database_url, config.db_path)
        except DatabaseUnreachable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                if waiting:
                    raise DatabaseUnreachable(f"{exc} (still, after waiting {config.database_wait_seconds:g} s)"
                                              ) from None
                raise
            if not waiting:
                waiting = True
                log.warning("database unreachable, retrying for up to %g s before giving up (not serving until "
                            "then): %s", config.database_wait_seconds, exc)  # the message holds no password
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            continue
        if waiting:
            log.info("database reachable after %.1f s of waiting", time.monotonic() - started)
        return opened


async def run(config: auth_settings.AuthSettings, prices: PriceTable) -> None:
    async with contextlib.AsyncExitStack() as stores:
        opened = await open_stores_waiting(config)
        stores.push_async_callback(opened.close)
        spent = spent_in(opened.ledger)  # counters start from the ledger: a restart hands out no fresh budget
        limiter: Limiter = MemoryLimiter(spent)
        if config.redis_url:
            shared = RedisLimiter(config.redis_url, config.redis_namespace, spent, config.redis_timeout_seconds)
            limiter = FallbackLimiter(shared, policy=config.redis_unavailable, spent=spent)
        stores.push_async_callback(limiter.close)
        servicer = AuthServicer(
            opened.keys,
            opened.ledger,
            hasher=KeyHasher(config.key_pepper),
            cache_ttl_seconds=config.cache_ttl_seconds,
            cache_max_entries=config.cache_max_entries,
            decision_reuse_seconds=config.decision_reuse_seconds,
            prices=prices,
            limiter=limiter,
            stale_keys_seconds=config.stale_keys_seconds,
        )
        if opened.migrated:
            log.info("schema migrated to version %d (applied %s)", opened.schema_version,
                     ", ".join(map(str, opened.migrated)))
        log.info("keys and usage ledger in %s", opened.location)
        following = asyncio.create_task(servicer.key_changes.follow(opened.keys.changes_since), name="key-changes")

        async def stop_following() -> None:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following

        stores.push_async_callback(stop_following)
        await grpc_server.serve(
            registrars=[servicer.register,
                        AdminServicer(opened.keys, opened.ledger, pepper=config.key_pepper,
                                      limiter=limiter).register],
            service_names=[SERVICE_NAME, ADMIN_SERVICE_NAME],
            address=config.listen,
            metrics_port=config.metrics_port,
            on_stop=stores.aclose,  # also closed on leaving the block, e.g. when the bind fails
        )


def prices_or_exit(config: auth_settings.AuthSettings) -> PriceTable:
    """The price table auth bills with; exits with status 2, every problem logged, when the file is unusable."""
    try:
        return load_prices(config.prices_file)
    except PriceFileError as exc:
        for problem in exc.problems:
            log.error("price file %s: %s", exc.source, problem)
        sys.exit(2)


def main() -> None:
    logs.setup("auth")
    config = auth_settings.load()
    try:
        checked_policy(config.redis_unavailable, "SWITCHBOARD_AUTH_REDIS_UNAVAILABLE")
    except ValueError as exc:
        log.error("%s", exc)
        sys.exit(2)
    prices = prices_or_exit(config)
    try:
        uvloop.run(run(config, prices))
    except StoreError as exc:
        log.error("keys and usage ledger unusable: %s", exc)
        sys.exit(3)


if __name__ == "__main__":
    main()
