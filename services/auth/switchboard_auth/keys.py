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
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from switchboard_auth.errors import InvalidKeySpec, KeyNotFound
from switchboard_common import platforms as known_platforms

if TYPE_CHECKING:
    from switchboard_auth.store import KeyStore

KEY_PREFIX = "sk-sb-"
_KEY_RANDOM_BYTES = 30  # → 40 url-safe characters
_PREFIX_SHOWN = 6  # random characters of a key shown in lists and logs (36 bits: tells keys apart, opens none)
KEY_ID_PATTERN = re.compile(r"key_[0-9a-f]{12}")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}")


class KeyState(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


# Clients a key may be restricted to, each with the one route family it speaks (`ClientMetadata.client_format`).
CLIENTS: dict[str, str] = {"claude-code": "anthropic", "codex-cli": "responses", "gemini-cli": "gemini"}


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What a key may do beyond its allow lists: deny lists (deny wins), clients and source addresses."""

    denied_platforms: tuple[str, ...] = ()
    denied_models: tuple[str, ...] = ()  # globs
    allowed_clients: tuple[str, ...] = ()  # of CLIENTS; empty = any client
    allowed_ips: tuple[str, ...] = ()  # CIDRs, normalised; empty = anywhere


@dataclasses.dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per-key limits; None is no limit. Money is integer micro-dollars (1 USD = 1,000,000)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    concurrency: int | None = None
    daily_budget_micro_usd: int | None = None
    monthly_budget_micro_usd: int | None = None
    total_budget_micro_usd: int | None = None

    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))


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
    # The key's first characters ("sk-sb-AbC123"): enough to tell keys apart in lists and logs, not to use one.
    key_prefix: str = ""
    owner: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    policy: KeyPolicy = KeyPolicy()
    limits: KeyLimits = KeyLimits()
    # After a rotation with a grace period: the old secret's hash, valid until `previous_valid_until`.
    previous_key_hash: str | None = dataclasses.field(default=None, repr=False)
    previous_valid_until: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def details(self) -> dict[str, object]:
        """What the stores keep as one JSON document beside the indexed columns (one home for its shape)."""
        return {
            "owner": self.owner, "description": self.description, "tags": list(self.tags),
            "policy": {f.name: list(getattr(self.policy, f.name)) for f in dataclasses.fields(KeyPolicy)},
            "limits": {f.name: getattr(self.limits, f.name) for f in dataclasses.fields(KeyLimits)
                       if getattr(self.limits, f.name) is not None},
        }


def details_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """`KeyRecord` keyword arguments from a stored `details()` document (fields it lacks keep defaults)."""
    policy = document.get("policy") or {}
    limits = document.get("limits") or {}
    return {
        "owner": str(document.get("owner", "")),
        "description": str(document.get("description", "")),
        "tags": tuple(document.get("tags") or ()),
        "policy": KeyPolicy(**{f.name: tuple(policy.get(f.name) or ()) for f in dataclasses.fields(KeyPolicy)}),
        "limits": KeyLimits(**{f.name: limits.get(f.name) for f in dataclasses.fields(KeyLimits)}),
    }


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


def validate_clients(values: Iterable[str]) -> tuple[str, ...]:
    result = _dedupe(values)
    unknown = [c for c in result if c not in CLIENTS]
    if unknown:
        raise InvalidKeySpec(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(CLIENTS)}")
    return result


def validate_networks(values: Iterable[str]) -> tuple[str, ...]:
    """CIDRs (a bare address is its own /32 or /128), normalised: `10.0.0.7/8` → `10.0.0.0/8`."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise InvalidKeySpec(f"invalid address or CIDR {value!r} (e.g. 203.0.113.0/24 or 2001:db8::/32)") from None
    return _dedupe(networks)


def validate_limits(limits: KeyLimits) -> KeyLimits:
    for f in dataclasses.fields(KeyLimits):
        value = getattr(limits, f.name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidKeySpec(f"limit {f.name} must be a positive whole number (omit it for no limit)")
    return limits


def validate_text(value: str, what: str, limit: int = 500) -> str:
    if len(value) > limit or any(not c.isprintable() for c in value):
        raise InvalidKeySpec(f"{what} must be at most {limit} printable characters")
    return value


def validate_policy(policy: KeyPolicy) -> KeyPolicy:
    return KeyPolicy(
        denied_platforms=validate_platforms(policy.denied_platforms),
        denied_models=validate_patterns(policy.denied_models, "denied model patterns"),
        allowed_clients=validate_clients(policy.allowed_clients),
        allowed_ips=validate_networks(policy.allowed_ips),
    )


def visible_prefix(plaintext: str) -> str:
    return plaintext[: len(KEY_PREFIX) + _PREFIX_SHOWN]


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
    owner: str = "",
    description: str = "",
    tags: Iterable[str] = (),
    policy: KeyPolicy = KeyPolicy(),
    limits: KeyLimits = KeyLimits(),
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
        key_prefix=visible_prefix(plaintext),
        owner=validate_text(owner, "owner", 200),
        description=validate_text(description, "description"),
        tags=validate_patterns(tags, "tags"),
        policy=validate_policy(policy),
        limits=validate_limits(limits),
    )
    if replace:
        await store.delete(name)
    await store.create(record)
    return plaintext, record


async def rotate_key(
    store: "KeyStore", ref: str, *, pepper: str = "", grace: timedelta | None = None
) -> tuple[str, KeyRecord]:
    """A new secret for the same key (id, name, policy, limits and history stay); returns (plaintext, record).

    With `grace`, the old secret keeps working that long (clients can be moved over); without, it stops now.
    A second rotation inside a grace period ends the first one's old secret at once.
    """
    record = await store.get(ref)
    if record is None:
        raise KeyNotFound(ref)
    if grace is not None and grace <= timedelta(0):
        raise InvalidKeySpec("the grace period must be positive")
    plaintext = generate_key()
    rotated = dataclasses.replace(
        record,
        key_hash=KeyHasher(pepper)(plaintext),
        key_prefix=visible_prefix(plaintext),
        previous_key_hash=record.key_hash if grace else None,
        previous_valid_until=datetime.now(UTC) + grace if grace else None,
    )
    if await store.update(rotated) is None:
        raise KeyNotFound(ref)
    return plaintext, rotated
