"""What an API key is: how it is minted, hashed and described, and how a new one is created.

Rules owned here:
- A key is `sk-sb-` + 40 url-safe characters (240 random bits from `secrets`).
  It is shown exactly once, at creation; only its hash is ever stored.
- Because keys are high-entropy, a fast hash is the right one: SHA-256, or
  HMAC-SHA-256 keyed with a pepper when one is configured. Changing the pepper
  invalidates every existing key.
- A key has a public `key_id` (`key_` + 12 random hex, not derived from the
  key) and a unique name that never looks like a key_id, so "NAME or KEY_ID"
  is never ambiguous.
- Allowed platforms must be known platform ids; empty platform or model lists
  mean "all". Expiry is an aware UTC datetime.
"""

import dataclasses
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from switchboard_auth.errors import InvalidKeySpec
from switchboard_common import platforms as known_platforms

if TYPE_CHECKING:
    from switchboard_auth.store import KeyStore

KEY_PREFIX = "sk-sb-"
_KEY_RANDOM_BYTES = 30  # → 40 url-safe characters
KEY_ID_PATTERN = re.compile(r"key_[0-9a-f]{12}")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")


class KeyState(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key: everything but the key itself."""

    key_id: str
    name: str
    key_hash: str = dataclasses.field(repr=False)  # so a logged or printed record never shows it
    state: KeyState
    created_at: datetime
    expires_at: datetime | None = None
    allowed_platforms: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    last_used_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class KeyHasher:
    """Turns a presented key into the hex digest the store is indexed by."""

    __slots__ = ("_pepper",)

    def __init__(self, pepper: str = "") -> None:
        self._pepper = pepper.encode()

    def __call__(self, key: str) -> str:
        data = key.encode()
        if self._pepper:
            return hmac.new(self._pepper, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def validate_name(name: str) -> str:
    if not _NAME_PATTERN.fullmatch(name):
        raise InvalidKeySpec(
            f"invalid key name {name!r}: use 1-128 letters, digits or ._@:- starting with a letter or digit"
        )
    if KEY_ID_PATTERN.fullmatch(name):
        raise InvalidKeySpec(f"invalid key name {name!r}: it looks like a key_id")
    return name


def validate_platforms(values: Iterable[str]) -> tuple[str, ...]:
    result = _dedupe(values)
    unknown = [p for p in result if not known_platforms.is_platform(p)]
    if unknown:
        raise InvalidKeySpec(
            f"unknown platform(s) {', '.join(unknown)}; known: {', '.join(known_platforms.ALL)}"
        )
    return result


def validate_patterns(values: Iterable[str], what: str) -> tuple[str, ...]:
    result = _dedupe(values)
    if any(not v or v != v.strip() for v in result):
        raise InvalidKeySpec(f"{what} must be non-empty and without surrounding spaces")
    return result


def validate_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidKeySpec("expiry must carry a timezone (use UTC, e.g. 2027-01-01T00:00:00Z)")
    expires_at = expires_at.astimezone(UTC)
    if expires_at <= now:
        raise InvalidKeySpec(f"expiry {expires_at.isoformat()} is in the past")
    return expires_at


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


async def create_key(
    store: "KeyStore",
    name: str,
    *,
    pepper: str = "",
    platforms: Iterable[str] = (),
    models: Iterable[str] = (),
    groups: Iterable[str] = (),
    expires_at: datetime | None = None,
    replace: bool = False,
) -> tuple[str, KeyRecord]:
    """Mints, validates and stores a new key; returns (plaintext, record).

    The plaintext exists only in the return value: show it once, never log it.
    `pepper` must equal the auth service's `SWITCHBOARD_AUTH_KEY_PEPPER`.
    With `replace=True` an existing key of the same name is deleted first
    (handy for a demo key minted on every local start).
    """
    now = datetime.now(UTC)
    plaintext = generate_key()
    record = KeyRecord(
        key_id=new_key_id(),
        name=validate_name(name),
        key_hash=KeyHasher(pepper)(plaintext),
        state=KeyState.ACTIVE,
        created_at=now,
        expires_at=validate_expiry(expires_at, now),
        allowed_platforms=validate_platforms(platforms),
        allowed_models=validate_patterns(models, "model patterns"),
        groups=validate_patterns(groups, "group names"),
    )
    if replace:
        await store.delete(name)
    await store.create(record)
    return plaintext, record
