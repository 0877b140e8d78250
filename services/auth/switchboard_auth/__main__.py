"""Boot and shutdown of the auth service: `python -m switchboard_auth`.

Loads the price table, opens the stores, serves AuthService (plus health,
reflection and metrics via `switchboard_common.grpc_server`) until
SIGTERM/SIGINT, then closes the stores. The stores are PostgreSQL when
`SWITCHBOARD_AUTH_DATABASE_URL` is set, else the SQLite file at
`SWITCHBOARD_AUTH_DB_PATH` (`store.open_stores`); either schema is migrated on
start. Exits with status 2 when the price file (`SWITCHBOARD_AUTH_PRICES_FILE`)
cannot be used, every problem in it logged, and with status 3 when the database
cannot be (unreachable, or written by a newer build).
"""

import asyncio
import contextlib
import logging
import sys

from switchboard_auth import settings as auth_settings
from switchboard_auth.admin import ADMIN_SERVICE_NAME, AdminServicer
from switchboard_auth.errors import StoreError
from switchboard_auth.keys import KeyHasher
from switchboard_auth.limits import FallbackLimiter, Limiter, MemoryLimiter, RedisLimiter, spent_in
from switchboard_auth.pricing import PriceFileError, PriceTable, load_prices
from switchboard_auth.service import SERVICE_NAME, AuthServicer
from switchboard_auth.store import open_stores
from switchboard_common import grpc_server, logs
from switchboard_common.redis_outage import checked_policy

log = logging.getLogger("switchboard_auth")


async def run(config: auth_settings.AuthSettings, prices: PriceTable) -> None:
    async with contextlib.AsyncExitStack() as stores:
        opened = await open_stores(config.database_url, config.db_path)
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
        asyncio.run(run(config, prices))
    except StoreError as exc:
        log.error("keys and usage ledger unusable: %s", exc)
        sys.exit(3)


if __name__ == "__main__":
    main()
