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
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from switchboard_auth.keys import KeyRecord, KeyState

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


@dataclasses.dataclass(frozen=True, slots=True)
class CompiledKey:
    """A key record prepared for the hot path: sets and one regex instead of lists and globs."""

    record: KeyRecord
    disabled: bool
    expires_at: float | None  # POSIX seconds
    platforms: frozenset[str]  # empty = all
    models: re.Pattern[str] | None  # None = all; same semantics as fnmatch.fnmatchcase

    @classmethod
    def of(cls, record: KeyRecord) -> "CompiledKey":
        models = None
        if record.allowed_models:
            models = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in record.allowed_models))
        return cls(
            record=record,
            disabled=record.state is not KeyState.ACTIVE,
            expires_at=None if record.expires_at is None else record.expires_at.timestamp(),
            platforms=frozenset(record.allowed_platforms),
            models=models,
        )


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


def decide(key: CompiledKey | None, platforms: Sequence[str], model: str, now: float) -> Verdict:
    """`key` is what the presented credential resolved to (None: no such key); `now` is POSIX seconds."""
    if key is None:
        return KEY_INVALID
    refused = _unusable(key, now)
    if refused is not None:
        return refused
    if not platforms:
        allowed = key.record.allowed_platforms
    elif not key.platforms:
        allowed = tuple(platforms)
    else:
        allowed = tuple(p for p in platforms if p in key.platforms)
        if not allowed:
            listed = ", ".join(_echo(p) for p in platforms)
            noun = "platform" if len(platforms) == 1 else "any of the platforms"
            return Verdict(Reason.PLATFORM_NOT_ALLOWED, f"This API key may not use {noun} {listed}.", key)
    if key.models is not None and key.models.match(model) is None:
        return Verdict(Reason.MODEL_NOT_ALLOWED, f"This API key may not use the model {_echo(model)}.", key)
    return Verdict(Reason.OK, _ALLOWED, key, allowed)
