"""Keys for local runs, minted through the auth service's own key API."""

import asyncio
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from switchboard_auth import settings as auth_settings
from switchboard_auth.keys import KeyLimits, create_key
from switchboard_auth.sqlite_store import SqliteKeyStore


async def _create(db_path: Path, name: str, platforms: Iterable[str], models: Iterable[str],
                  groups: Iterable[str], expires_at: datetime | None, limits: KeyLimits) -> str:
    store = await SqliteKeyStore.open(str(db_path))
    try:
        plaintext, _ = await create_key(
            store, name, pepper=auth_settings.load().key_pepper, platforms=platforms, models=models,
            groups=groups, expires_at=expires_at, replace=True, limits=limits,
        )
    finally:
        await store.close()
    return plaintext


def create_demo_key(db_path: Path, name: str = "demo", *, platforms: Iterable[str] = (),
                    models: Iterable[str] = (), groups: Iterable[str] = (),
                    expires_at: datetime | None = None, limits: KeyLimits | None = None) -> str:
    """Mints (or re-mints) the key `name` in the SQLite key store and returns it."""
    return asyncio.run(_create(db_path, name, platforms, models, groups, expires_at, limits or KeyLimits()))
