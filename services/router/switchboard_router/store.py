"""Where accounts come from: the interface every account backend implements.

A source hands the router complete, validated account lists, never partial
edits, and keeps quiet about invalid ones so the live pool stays as it was.
Today the only backend is the YAML file (`file_source`); the Kubernetes
operator and Redis feed the same interface later. Service logic sees only this.
"""

from collections.abc import Callable, Sequence
from typing import Protocol

from switchboard_router.accounts import Account

Publish = Callable[[Sequence[Account]], None]


class AccountSource(Protocol):
    """A backend that can load the account list now and publish every later change."""

    def load(self) -> Sequence[Account]:
        """The current list, read now; raises `AccountsInvalid` when it cannot be used."""
        ...

    async def watch(self, publish: Publish) -> None:
        """Runs until cancelled, calling `publish` with each valid new list."""
        ...
