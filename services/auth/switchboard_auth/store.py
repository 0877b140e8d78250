"""The storage interfaces auth depends on; backends implement them, service logic sees only these.

Rules owned here:
- A key is found by the hash of the presented key, or administratively by
  "NAME or KEY_ID" (names never look like key_ids, so a ref is unambiguous).
- Names and hashes are unique; `create` raises `KeyNameTaken` on a taken name.
- The ledger writes each `request_id` at most once and reports which entries
  were new, so nothing downstream double-counts a retried batch.
- Timestamps cross this boundary as aware UTC datetimes; each backend picks
  its own column types.

One backend today (`sqlite_store`); PostgreSQL implements the same protocols later.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from switchboard_auth.keys import KeyRecord, KeyState
from switchboard_auth.usage import UsageEntry


class KeyStore(Protocol):
    async def get_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key whose current secret, or whose previous one (a rotation's grace), has this hash."""
        ...

    async def get(self, ref: str) -> KeyRecord | None:
        """By key_id or by name."""
        ...

    async def create(self, record: KeyRecord) -> None: ...

    async def list_all(self) -> list[KeyRecord]:
        """Every key, ordered by name."""
        ...

    async def set_state(self, ref: str, state: KeyState) -> KeyRecord | None:
        """Returns the updated record, or None when no key matches `ref`."""
        ...

    async def update(self, record: KeyRecord) -> KeyRecord | None:
        """Replaces everything of the key with `record.key_id` but its id, name, creation and last use;
        returns the stored record, or None when there is no such key."""
        ...

    async def delete(self, ref: str) -> KeyRecord | None:
        """Returns the deleted record, or None when no key matches `ref`."""
        ...

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        """Moves each key_id's last_used_at forward (never back) in one batch."""
        ...

    async def close(self) -> None: ...


class Ledger(Protocol):
    async def append(self, entries: Sequence[UsageEntry]) -> list[UsageEntry]:
        """Writes entries whose request_id is new; returns exactly those, in order."""
        ...

    async def close(self) -> None: ...
