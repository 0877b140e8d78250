"""The live account pool: an immutable snapshot, swapped whole when a source publishes.

Readers (every RPC) take `pool.snapshot` once and use it to the end of the call,
so a reload never shows them half a pool. Anything derived from the account list
(lookup by id, the Pick reply's Account messages) is computed here once per
reload, not per request.
"""

import logging
from collections.abc import Sequence

from switchboard.router.v1 import router_pb2
from switchboard_router import metrics, wire
from switchboard_router.accounts import Account, State

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
    """Holds the current snapshot; `replace` is the `Publish` callback sources call."""

    def __init__(self, accounts: Sequence[Account] = ()) -> None:
        self.snapshot = PoolSnapshot(())
        self.replace(accounts)

    def replace(self, accounts: Sequence[Account]) -> None:
        snapshot = PoolSnapshot(accounts)
        self.snapshot = snapshot
        metrics.set_account_states(snapshot.accounts)
        for account in snapshot.accounts:
            if account.state is State.ERROR:
                log.error("account %s is unusable: %s", account.id, account.error)
        states = [a.state for a in snapshot.accounts]
        log.info(
            "account pool now has %d accounts (%s)",
            len(states),
            ", ".join(f"{s.value} {states.count(s)}" for s in State if states.count(s)) or "empty",
        )
