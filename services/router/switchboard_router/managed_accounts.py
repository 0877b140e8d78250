"""Accounts managed at run time (`UpsertAccount`, `DeleteAccount`): kept in the router's state backend.

Each is stored as one accounts-file entry in canonical JSON, validated by the same code as the file
(`accounts_yaml.parse_account`) before it is stored and again when any replica loads it. Every replica
watches the backend's accounts version and republishes the whole managed list to its pool when it moves
(Redis: within a reload interval, 1 s, of another replica's change; this replica's own at once), so a
change is served everywhere within 2 seconds. An account the accounts file defines cannot be managed
here: the file stays the embedded default's source of truth for what it names.

Credentials stored at run time (StoreCredential: refreshed OAuth tokens, of file and managed accounts alike)
are shared the same way: `share_credential` puts the one a replica took in the backend, which moves the
accounts version, and every replica's reload takes each one newer than its own (`AccountPool.adopt_shared`).

Records hold the account's secrets inline, so the backend (Redis) must be as trusted as the accounts file.
"""

import asyncio
import json
import logging

from switchboard_router.accounts import Account
from switchboard_router.accounts_yaml import parse_account
from switchboard_router.errors import AccountsInvalid, FileAccount, InvalidAccount, StoreUnavailable
from switchboard_router.pool import AccountPool
from switchboard_router.state import RouterState, StateUnavailable

log = logging.getLogger(__name__)

SOURCE = "UpsertAccount"
# A spec larger than this is refused before it is parsed (an account is a few kilobytes).
MAX_SPEC_BYTES = 64 * 1024
# After a failed load the watcher waits this long before trying again.
RETRY_SECONDS = 1.0


class ManagedAccounts:
    """Upsert and delete in the state backend; `watch` keeps the pool's managed list in step with it."""

    def __init__(self, state: RouterState, pool: AccountPool) -> None:
        self._state = state
        self._pool = pool

    async def upsert(self, spec_json: str) -> tuple[Account, bool]:
        """Validates and stores one account; returns it and whether it is new. Raises `InvalidAccount`,
        `FileAccount` or `StoreUnavailable`."""
        if len(spec_json.encode()) > MAX_SPEC_BYTES:
            raise InvalidAccount(f"spec_json is larger than {MAX_SPEC_BYTES} bytes")
        try:
            spec = json.loads(spec_json)
        except json.JSONDecodeError as exc:
            raise InvalidAccount(f"spec_json is not valid JSON: {exc.msg} at position {exc.pos}") from None
        try:
            account = parse_account(spec, source=SOURCE)
        except AccountsInvalid as exc:
            raise InvalidAccount("; ".join(exc.problems)) from None
        if account.id in self._pool.file_ids:
            raise FileAccount(f"account {account.id} is defined by the accounts file; change it there")
        created = account.id not in self._pool.managed_ids
        record = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
        try:
            await self._state.put_account(account.id, record)
        except StateUnavailable as exc:
            raise StoreUnavailable(f"account {account.id} not stored: {exc}") from None
        await self.reload()
        log.info("managed account %s %s", account.id, "created" if created else "replaced")
        return account, created

    async def delete(self, account_id: str) -> bool:
        """Removes a managed account; False when there was none. Raises `FileAccount`, `StoreUnavailable`."""
        if account_id in self._pool.file_ids:
            raise FileAccount(f"account {account_id[:200]} is defined by the accounts file; remove it there")
        existed = account_id in self._pool.managed_ids
        try:
            await self._state.delete_account(account_id)
        except StateUnavailable as exc:
            raise StoreUnavailable(f"account {account_id[:200]} not deleted: {exc}") from None
        await self.reload()
        if existed:
            log.info("managed account %s deleted", account_id)
        return existed

    async def reload(self) -> None:
        """Publishes the backend's managed accounts to the pool now. A record that no longer validates (an
        older router wrote it, or a newer one) is left out and logged, never fatal to the rest."""
        records = await self._state.accounts()
        accounts: list[Account] = []
        for account_id, record in sorted(records.items()):
            try:
                accounts.append(parse_account(json.loads(record), source=f"managed account {account_id}"))
            except (ValueError, AccountsInvalid) as exc:
                log.error("managed account %s cannot be used: %s", account_id[:200], exc)
        self._pool.replace_managed(accounts)
        self._pool.adopt_shared(await self._state.credentials())

    async def share_credential(self, account_id: str) -> None:
        """Puts the credential just stored for the account (StoreCredential) in the state backend, for every
        replica to serve. While it cannot be reached the credential stays this replica's (logged)."""
        record = self._pool.stored_record(account_id)
        if record is None:
            return
        try:
            await self._state.put_credential(account_id, record)
        except StateUnavailable as exc:
            log.warning("stored credential of %s not shared with other routers: %s", account_id, exc)

    async def watch(self) -> None:
        """Runs until cancelled: loads the managed accounts, then again whenever any replica changes them."""
        while True:
            version = self._state.accounts_version()
            try:
                await self.reload()
            except StateUnavailable as exc:
                log.warning("managed accounts not reloaded (keeping the last list): %s", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await self._state.wait_accounts_changed(version)

