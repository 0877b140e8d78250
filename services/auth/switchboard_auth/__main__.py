"""Boot and shutdown of the auth service: `python -m switchboard_auth`.

Loads the price table, opens the stores, serves AuthService (plus health,
reflection and metrics via `switchboard_common.grpc_server`) until
SIGTERM/SIGINT, then closes the stores. Exits with status 2 when the price file
(`SWITCHBOARD_AUTH_PRICES_FILE`) cannot be used, every problem in it logged.
"""

import asyncio
import contextlib
import logging
import sys

from switchboard_auth import settings as auth_settings
from switchboard_auth.keys import KeyHasher
from switchboard_auth.limits import MemoryLimiter, RedisLimiter
from switchboard_auth.pricing import PriceFileError, PriceTable, load_prices
from switchboard_auth.service import SERVICE_NAME, AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_common import grpc_server, logs

log = logging.getLogger("switchboard_auth")


async def run(config: auth_settings.AuthSettings, prices: PriceTable) -> None:
    async with contextlib.AsyncExitStack() as stores:
        keys = await SqliteKeyStore.open(config.db_path)
        stores.push_async_callback(keys.close)
        ledger = await SqliteLedger.open(config.db_path)
        stores.push_async_callback(ledger.close)
        limiter = RedisLimiter(config.redis_url, config.redis_namespace) if config.redis_url else MemoryLimiter()
        stores.push_async_callback(limiter.close)
        servicer = AuthServicer(
            keys,
            ledger,
            hasher=KeyHasher(config.key_pepper),
            cache_ttl_seconds=config.cache_ttl_seconds,
            cache_max_entries=config.cache_max_entries,
            decision_reuse_seconds=config.decision_reuse_seconds,
            prices=prices,
            limiter=limiter,
        )
        log.info("keys and usage ledger in %s", config.db_path)
        await grpc_server.serve(
            registrars=[servicer.register],
            service_names=[SERVICE_NAME],
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
    asyncio.run(run(config, prices_or_exit(config)))


if __name__ == "__main__":
    main()
