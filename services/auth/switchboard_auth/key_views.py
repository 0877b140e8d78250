"""What an operator, or the key's holder, may see of a key: one JSON shape, used by every way out.

Rules owned here:
- A view never holds the key, its hash or the previous secret's hash: only what `public` lists.
- `switchboard keys show --json`, `keys list --json` and the admin API (`AdminService`, the edge's
  `/admin/v1/keys`) all print this one shape; times are UTC ISO 8601 with a `Z`, money integer micro-dollars.
"""

from datetime import UTC, datetime
from typing import Any

from switchboard_auth.keys import KeyRecord


def iso(value: datetime | None) -> str | None:
    """An aware datetime as `2027-01-01T00:00:00Z` (None stays None)."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """Everything an operator may see about a key: no key, no hash."""
    details = record.details()
    return {
        "key_id": record.key_id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "state": record.state.value,
        "expired": record.is_expired(now),
        "expires_at": iso(record.expires_at),
        "allowed_platforms": list(record.allowed_platforms),
        "allowed_models": list(record.allowed_models),
        "groups": list(record.groups),
        "created_at": iso(record.created_at),
        "last_used_at": iso(record.last_used_at),
        "previous_secret_valid_until": iso(record.previous_valid_until),
        **details,
    }
