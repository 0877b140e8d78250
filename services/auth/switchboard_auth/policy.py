"""The decision rule: given the key a credential names, may this request go ahead?

Checks run in this order and the first failure decides:
missing credential → unknown key → disabled → expired (all "who are you", 401
at the edge) → none of the requested platforms allowed → model not allowed
(both "you may not", 403). Otherwise ALLOW, with `allowed_platforms` = the
requested platforms the key may use, in request order. A request that names
no platforms is not narrowed: it gets the key's own list (empty = all).
`authenticate` runs the "who are you" checks alone (Authenticate: no platform,
no model); `decide` starts with exactly those.

Pure and synchronous: no I/O, no clock of its own, no protobuf. Messages are
safe to show the client and never contain the credential.
"""

import dataclasses
import enum
import fnmatch
import hmac
import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from switchboard_auth.keys import CLIENTS, KeyRecord, KeyState
from switchboard_common import platforms as known_platforms

_MAX_ECHO = 128  # longest client-supplied string repeated back in a message


class Reason(enum.StrEnum):
    """Mirrors `switchboard.auth.v1.Reason`; the value is the metric label."""

    OK = "ok"
    KEY_MISSING = "key_missing"
    KEY_INVALID = "key_invalid"
    KEY_DISABLED = "key_disabled"
    KEY_EXPIRED = "key_expired"
    PLATFORM_NOT_ALLOWED = "platform_not_allowed"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    CLIENT_NOT_ALLOWED = "client_not_allowed"
    SOURCE_NOT_ALLOWED = "source_not_allowed"
    RATE_LIMITED = "rate_limited"
    CONCURRENCY_LIMITED = "concurrency_limited"
    QUOTA_EXCEEDED = "quota_exceeded"


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledKey:
    """A key record prepared for the hot path: sets and one regex instead of lists and globs."""

    record: KeyRecord
    disabled: bool
    expires_at: float | None  # POSIX seconds
    platforms: frozenset[str]  # empty = all
    models: re.Pattern[str] | None  # None = all; same semantics as fnmatch.fnmatchcase
    # Presented with the secret a rotation replaced: it works until then (POSIX seconds). None: the current one.
    retired_at: float | None = None
    denied_platforms: frozenset[str] = frozenset()
    denied_models: re.Pattern[str] | None = None  # None = none denied
    clients: frozenset[str] = frozenset()  # empty = any
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()  # empty = anywhere

    @classmethod
    def of(cls, record: KeyRecord, *, previous_secret: bool = False) -> "CompiledKey":
        models = _globs(record.allowed_models)
        retired_at = None
        if previous_secret:
            until = record.previous_valid_until
            retired_at = until.timestamp() if until is not None else float("-inf")
        return cls(
            record=record,
            disabled=record.state is not KeyState.ACTIVE,
            expires_at=None if record.expires_at is None else record.expires_at.timestamp(),
            platforms=frozenset(record.allowed_platforms),
            models=models,
            retired_at=retired_at,
            denied_platforms=frozenset(record.policy.denied_platforms),
            denied_models=_globs(record.policy.denied_models),
            clients=frozenset(record.policy.allowed_clients),
            networks=tuple(ipaddress.ip_network(n) for n in record.policy.allowed_ips),
        )


# Real keys are 46 characters; a longer credential is refused without a lookup.
MAX_CREDENTIAL_LENGTH = 512


def matching_key(record: KeyRecord | None, key_hash: str) -> CompiledKey | None:
    """The key a presented secret's hash names, compared in constant time: by its current secret, or by the one a
    rotation replaced (usable through its grace, which `decide` checks); None for no key."""
    if record is None:
        return None
    if hmac.compare_digest(record.key_hash, key_hash):
        return CompiledKey.of(record)
    if record.previous_key_hash is not None and hmac.compare_digest(record.previous_key_hash, key_hash):
        return CompiledKey.of(record, previous_secret=True)
    return None


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for a list of globs (fnmatch.fnmatchcase semantics); None for an empty list."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)) if patterns else None


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, as the edge saw it: the client's address (behind trusted proxies), the client program it
    recognised ("claude-code", "codex-cli", "gemini-cli", or "") and the route family it came in on."""

    address: str = ""
    app: str = ""
    client_format: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason
    message: str
    key: CompiledKey | None = None
    allowed_platforms: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.OK


KEY_MISSING = Verdict(
    Reason.KEY_MISSING,
    "No API key was provided. Send it as 'Authorization: Bearer <key>' or in an 'x-api-key' header.",
)
KEY_INVALID = Verdict(Reason.KEY_INVALID, "The API key is not valid.")
_ALLOWED = "Request allowed."
_AUTHENTICATED = "API key accepted."


def _echo(value: str) -> str:
    return repr(value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "…")


def _unusable(key: CompiledKey, now: float) -> Verdict | None:
    """The refusal of a key that exists but may not be used at all (disabled, expired), else None."""
    if key.retired_at is not None and key.retired_at <= now:
        return KEY_INVALID  # a rotated-out secret past its grace is no key at all
    if key.disabled:
        return Verdict(Reason.KEY_DISABLED, "This API key is disabled.", key)
    if key.expires_at is not None and key.expires_at <= now:
        when = datetime.fromtimestamp(key.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Verdict(Reason.KEY_EXPIRED, f"This API key expired at {when}.", key)
    return None


def authenticate(key: CompiledKey | None, now: float) -> Verdict:
    """The key checks alone: unknown → disabled → expired, else OK (with no `allowed_platforms`)."""
    if key is None:
        return KEY_INVALID
    return _unusable(key, now) or Verdict(Reason.OK, _AUTHENTICATED, key)


def decide(key: CompiledKey | None, platforms: Sequence[str], model: str, now: float,
           caller: Caller = Caller()) -> Verdict:
    """`key` is what the presented credential resolved to (None: no such key); `now` is POSIX seconds.

    After the key checks: the source address, the client program, then platforms (allowed, minus denied)
    and the model (allowed and not denied); deny always wins."""
    if key is None:
        return KEY_INVALID
    refused = _unusable(key, now) or _caller_refused(key, caller)
    if refused is not None:
        return refused
    if not platforms:
        allowed = tuple(p for p in key.record.allowed_platforms if p not in key.denied_platforms)
        if key.denied_platforms and not key.platforms:
            allowed = tuple(p for p in known_platforms.ALL if p not in key.denied_platforms)
    else:
        allowed = tuple(p for p in platforms
                        if (not key.platforms or p in key.platforms) and p not in key.denied_platforms)
        if not allowed:
            listed = ", ".join(_echo(p) for p in platforms)
            noun = "platform" if len(platforms) == 1 else "any of the platforms"
            return Verdict(Reason.PLATFORM_NOT_ALLOWED, f"This API key may not use {noun} {listed}.", key)
    if (key.models is not None and key.models.match(model) is None) or (
            key.denied_models is not None and key.denied_models.match(model) is not None):
        return Verdict(Reason.MODEL_NOT_ALLOWED, f"This API key may not use the model {_echo(model)}.", key)
    return Verdict(Reason.OK, _ALLOWED, key, allowed)


def _caller_refused(key: CompiledKey, caller: Caller) -> Verdict | None:
    if key.networks:
        try:
            address = ipaddress.ip_address(caller.address)
        except ValueError:
            address = None
        if address is None or not any(address in network for network in key.networks):
            shown = _echo(caller.address) if caller.address else "an unknown address"
            return Verdict(Reason.SOURCE_NOT_ALLOWED, f"This API key may not be used from {shown}.", key)
    if key.clients:
        if caller.app not in key.clients:
            allowed = ", ".join(sorted(key.clients))
            return Verdict(Reason.CLIENT_NOT_ALLOWED, f"This API key may be used only by {allowed}.", key)
        if CLIENTS[caller.app] != caller.client_format:
            return Verdict(Reason.CLIENT_NOT_ALLOWED,
                           f"This API key may be used only on {caller.app}'s own routes.", key)
    return None


# How a refusing limit is named to the client, and the reason it gives.
_LIMITS: dict[str, tuple[Reason, str]] = {
    "requests_per_minute": (Reason.RATE_LIMITED, "{limit} requests per minute"),
    "tokens_per_minute": (Reason.RATE_LIMITED, "{limit} tokens per minute"),
    "tokens_per_day": (Reason.RATE_LIMITED, "{limit} tokens per day (UTC)"),
    "concurrency": (Reason.CONCURRENCY_LIMITED, "{limit} requests at once"),
    "daily_budget_micro_usd": (Reason.QUOTA_EXCEEDED, "daily budget of {usd} USD"),
    "monthly_budget_micro_usd": (Reason.QUOTA_EXCEEDED, "monthly budget of {usd} USD"),
    "total_budget_micro_usd": (Reason.QUOTA_EXCEEDED, "total budget of {usd} USD"),
}


def limit_refusal(key: CompiledKey, refused_by: str) -> Verdict:
    """The refusal of a request a key's limit stopped (429 at the edge), naming the limit."""
    reason, text = _LIMITS[refused_by]
    limit = getattr(key.record.limits, refused_by)
    usd = f"{limit / 1_000_000:.2f}" if limit is not None else "?"
    described = text.format(limit=limit, usd=usd)
    if reason is Reason.QUOTA_EXCEEDED:
        message = f"This API key has used up its {described}."
    else:
        message = f"This API key has reached its limit of {described}; retry after the time given."
    return Verdict(reason, message, key)
