"""Boot and shutdown of the auth service: `python -m switchboard_auth`.

Opens the stores, serves AuthService (plus health, reflection and metrics via
`switchboard_common.grpc_server`) until SIGTERM/SIGINT, then closes the stores.
"""

import asyncio
import contextlib
import logging

from switchboard_auth import settings as auth_settings
from switchboard_auth.keys import KeyHasher
from switchboard_auth.service import SERVICE_NAME, AuthServicer
from switchboard_auth.sqlite_store import SqliteKeyStore, SqliteLedger
from switchboard_common import grpc_server, logs

log = logging.getLogger("switchboard_auth")


async def run(config: auth_settings.AuthSettings) -> None:
    async with contextlib.AsyncExitStack() as stores:
        keys = await SqliteKeyStore.open(config.db_path)
        stores.push_async_callback(keys.close)
        ledger = await SqliteLedger.open(config.db_path)
        stores.push_async_callback(ledger.close)
        servicer = AuthServicer(
            keys,
            ledger,
            hasher=KeyHasher(config.key_pepper),
            cache_ttl_seconds=config.cache_ttl_seconds,
            cache_max_entries=config.cache_max_entries,
            decision_reuse_seconds=config.decision_reuse_seconds,
        )
        log.info("keys and usage ledger in %s", config.db_path)
        await grpc_server.serve(
            registrars=[servicer.register],
            service_names=[SERVICE_NAME],
            address=config.listen,
            metrics_port=config.metrics_port,
            on_stop=stores.aclose,  # also closed on leaving the block, e.g. when the bind fails
        )


def main() -> None:
    logs.setup("auth")
    asyncio.run(run(auth_settings.load()))


if __name__ == "__main__":
    main()
