"""The live account pool: an immutable snapshot, swapped whole when a source publishes
or a credential is stored.

Readers (every RPC) take `pool.snapshot` once and use it to the end of the call,
so a reload never shows them half a pool. Anything derived from the account list
(lookup by id, the Pick reply's Account messages) is computed here once per
reload, not per request.
"""

import logging
from collections.abc import Callable, Mapping, Sequence

from switchboard.router.v1 import router_pb2
from switchboard_router import metrics, wire
from switchboard_router.accounts import Account, State
from switchboard_router.credential_overlay import CredentialOverlay
from switchboard_router.errors import CredentialNotSaved, InvalidCredential, UnknownAccount
from switchboard_router.platform_fields import PLATFORMS

log = logging.getLogger(__name__)


class PoolSnapshot:
    """One account list, in source order, with its precomputed lookups."""

    __slots__ = ("accounts", "by_id", "messages")

    def __init__(self, accounts: Sequence[Account]) -> None:
        self.accounts: tuple[Account, ...] = tuple(accounts)
        self.by_id: dict[str, Account] = {a.id: a for a in self.accounts}
        # Pick replies carry the credential; built once here instead of per pick.
        self.messages: dict[str, router_pb2.Account] = {
            a.id: wire.account_message(a, with_credential=True) for a in self.accounts
        }


class AccountPool:
    """Holds the current snapshot: the source's accounts with the credential overlay applied.

    `replace` is the `Publish` callback sources call; `store_credential` and `credential_failed`
    change one account's credential or state at once (StoreCredential), and every later
    snapshot keeps the change (see `credential_overlay` for when it ends).
    """

    def __init__(self, accounts: Sequence[Account] = (), overlay: CredentialOverlay | None = None) -> None:
        self.overlay = overlay if overlay is not None else CredentialOverlay(None)
        self.snapshot = PoolSnapshot(())
        # Told the ids of accounts whose credential changed (a refused one may work now).
        self.on_new_credentials: Callable[[list[str]], None] | None = None
        # The accounts as their sources published them, before the overlay: the file's, then the managed
        # ones (`UpsertAccount`) the file does not define.
        self._sourced: dict[str, Account] = {}
        self._file: tuple[Account, ...] = ()
        self._managed: tuple[Account, ...] = ()
        self.replace(accounts)

    @property
    def file_ids(self) -> frozenset[str]:
        return frozenset(a.id for a in self._file)

    @property
    def managed_ids(self) -> frozenset[str]:
        return frozenset(self._sourced) - self.file_ids

    def replace(self, accounts: Sequence[Account]) -> None:
        """The accounts file's list (the `Publish` callback of the file source)."""
        self._file = tuple(accounts)
        self._merge()

    def replace_managed(self, accounts: Sequence[Account]) -> None:
        """The accounts managed at run time, as the state backend holds them now."""
        self._managed = tuple(accounts)
        self._merge()

    def _merge(self) -> None:
        merged = {a.id: a for a in self._file}
        for account in self._managed:
            if account.id in merged:
                log.warning("managed account %s ignored: the accounts file defines it", account.id)
            else:
                merged[account.id] = account
        self._sourced = merged
        accounts = tuple(merged.values())
        snapshot = self._publish(self.overlay.apply(accounts))
        for account in snapshot.accounts:
            if account.state is State.ERROR:
                log.error("account %s is unusable: %s", account.id, account.error)
        states = [a.state for a in snapshot.accounts]
        log.info(
            "account pool now has %d accounts (%s)",
            len(states),
            ", ".join(f"{s.value} {states.count(s)}" for s in State if states.count(s)) or "empty",
        )

    def store_credential(self, account_id: str, api_key: str, secrets: Mapping[str, str]) -> bool:
        """The account's new credential, live at once and persisted; False when it was ignored as older than
        the one held. Raises `UnknownAccount`,
        `InvalidCredential` (naming fields, never values) or, after applying it, `CredentialNotSaved`."""
        account = self._sourced_account(account_id)
        problems = PLATFORMS[account.platform].check_credential(api_key, secrets)
        if problems:
            raise InvalidCredential(f"account {account_id}: " + "; ".join(problems))
        try:
            stored = self.overlay.store(account, api_key, secrets)
            if stored:
                log.info("account %s: new credential stored", account_id)
            return stored
        finally:
            self._publish(self.overlay.apply(tuple(self._sourced.values())))

    def credential_failed(self, account_id: str, reason: str) -> None:
        """Puts the account in error with `reason` until a credential is stored, the source's
        changes or the router restarts."""
        account = self._sourced_account(account_id)
        self.overlay.fail(account, reason)
        log.error("account %s is unusable until a new credential is stored, the accounts file's changes or "
                  "the router restarts: %s", account_id, reason)
        self._publish(self.overlay.apply(tuple(self._sourced.values())))

    def stored_record(self, account_id: str) -> bytes | None:
        """The account's stored credential as a record to share with other replicas; None without one."""
        account = self._sourced.get(account_id)
        return None if account is None else self.overlay.record(account)

    def adopt_shared(self, records: Mapping[str, bytes]) -> None:
        """Credentials other replicas stored (the shared state's records by account id): each newer than this
        replica's is taken and served at once. A record for an account not in the pool waits for the next
        time the shared records are read."""
        adopted: list[str] = []
        for account_id, record in sorted(records.items()):
            account = self._sourced.get(account_id)
            if account is None or account.error is not None:
                continue
            try:
                if self.overlay.adopt(account, record):
                    adopted.append(account_id)
            except CredentialNotSaved as exc:  # taken, in memory only
                adopted.append(account_id)
                log.error("%s", exc)
        if adopted:
            log.info("account(s) %s: newer credential stored by another router taken", ", ".join(adopted))
            self._publish(self.overlay.apply(tuple(self._sourced.values())))

    def stored_credential(self, account_id: str) -> tuple[str, Mapping[str, str]] | None:
        """The credential an edge stored for a managed account, served instead of the upserted one; None
        for accounts of the file (their stored credentials stay with the router) and accounts without one."""
        if account_id not in self.managed_ids:
            return None
        entry = self.overlay.stored(self._sourced[account_id])
        return None if entry is None or entry.api_key is None else (entry.api_key, entry.secrets)

    def _sourced_account(self, account_id: str) -> Account:
        account = self._sourced.get(account_id)
        if account is None:
            raise UnknownAccount(f"no account {account_id[:200]!r} in the pool")
        return account

    def _publish(self, accounts: Sequence[Account]) -> PoolSnapshot:
        snapshot = PoolSnapshot(accounts)
        before = self.snapshot.by_id
        changed = [a.id for a in snapshot.accounts
                   if (old := before.get(a.id)) is not None and (old.api_key, old.secrets) != (a.api_key, a.secrets)]
        self.snapshot = snapshot
        if changed and self.on_new_credentials is not None:
            self.on_new_credentials(changed)
        metrics.set_account_states(snapshot.accounts)
        return snapshot
