"""The router's live view of an account -> the UpstreamAccount's `status`. Pure functions.

Conditions have the `metav1.Condition` shape; a condition's `lastTransitionTime` moves only when its status
does. `Live` is what ListAccounts says about one account (None: the router does not serve it).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

READY, RATE_LIMITED, ERROR = "Ready", "RateLimited", "Error"
# Router hold kinds that are rate limits (the vendor said wait), and the condition reason each gives.
RATE_LIMIT_REASONS = {"throttled": "Throttled", "window": "UsageWindowSpent", "overloaded": "Overloaded"}
_STATE_REASONS = {"cooling": "Cooling", "error": "AccountError", "disabled": "Disabled"}
MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True)
class Hold:
    family: str  # "" for the whole account
    kind: str
    until: float  # Unix seconds; 0 until cleared
    reason: str


@dataclass(frozen=True)
class Window:
    family: str
    name: str
    utilization: float
    resets_at: float  # Unix seconds; 0 when unknown


@dataclass(frozen=True)
class Live:
    state: str  # ready, cooling, error, disabled
    in_flight: int = 0
    holds: Sequence[Hold] = ()
    windows: Sequence[Window] = ()


@dataclass(frozen=True)
class Problem:
    """Why the operator could not (or not yet) push the account: a condition reason and a message."""

    reason: str  # e.g. InvalidSpec, SecretMissing, RouterRefused, RouterUnavailable
    message: str


@dataclass(frozen=True)
class Observed:
    account_id: str
    generation: int
    live: Live | None
    problem: Problem | None = None
    previous: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def _hold_text(hold: Hold) -> str:
    scope = hold.family or "all models"
    until = f" until {timestamp(hold.until)}" if hold.until > 0 else ""
    return f"{hold.kind} ({scope}){until}" + (f": {hold.reason}" if hold.reason else "")


def _conditions(observed: Observed) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) for Ready, RateLimited and Error."""
    live, problem = observed.live, observed.problem
    if problem is not None:
        ready = ("False", problem.reason, problem.message)
    elif live is None:
        ready = ("Unknown", "NotInRouter", "the router does not serve this account (yet)")
    elif live.state == "ready":
        family_holds = [h for h in live.holds if h.family]
        ready = ("True", "Serving", "; ".join(map(_hold_text, family_holds)) or "the router serves this account")
    else:
        whole = [h for h in live.holds if not h.family]
        ready = ("False", _STATE_REASONS.get(live.state, "NotReady"),
                 "; ".join(map(_hold_text, whole)) or f"the account is {live.state}")

    limits = [h for h in (live.holds if live else ()) if h.kind in RATE_LIMIT_REASONS]
    if limits:
        first = next((h for h in limits if not h.family), limits[0])
        rate_limited = ("True", RATE_LIMIT_REASONS[first.kind], "; ".join(map(_hold_text, limits)))
    else:
        rate_limited = ("False", "NotRateLimited", "no rate-limit hold")

    errors = [h for h in (live.holds if live else ()) if h.kind in ("error", "breaker")]
    if problem is not None:
        error = ("True", problem.reason, problem.message)
    elif errors:
        first = next((h for h in errors if h.kind == "error"), errors[0])
        error = ("True", "CredentialRefused" if first.kind == "error" else "CircuitOpen", _hold_text(first))
    elif live is not None and live.state == "error":
        error = ("True", "AccountError", "the router holds the account in error")
    else:
        error = ("False", "NoError", "no error")
    return [(READY, *ready), (RATE_LIMITED, *rate_limited), (ERROR, *error)]


def status(observed: Observed, now: datetime) -> dict[str, Any]:
    """The whole `status` for the UpstreamAccount (fields without a value are None, so a merge patch removes
    them)."""
    previous = {c.get("type"): c for c in observed.previous if isinstance(c, Mapping)}
    conditions = []
    for kind, state, reason, message in _conditions(observed):
        before = previous.get(kind) or {}
        kept = before.get("lastTransitionTime") if before.get("status") == state else None
        conditions.append({
            "type": kind, "status": state, "reason": reason, "message": _short(message),
            "observedGeneration": observed.generation,
            "lastTransitionTime": kept or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    live = observed.live
    limits = [h.until for h in (live.holds if live else ()) if h.kind in RATE_LIMIT_REASONS and h.until > 0]
    errors = [h.reason or h.kind for h in (live.holds if live else ()) if h.kind == "error"]
    last_error = observed.problem.message if observed.problem else (errors[0] if errors else None)
    return {
        "observedGeneration": observed.generation,
        "accountId": observed.account_id,
        "inFlight": live.in_flight if live else 0,
        "cooldownUntil": timestamp(max(limits)) if limits else None,
        "lastError": _short(last_error) if last_error else None,
        "windows": [
            {"family": w.family, "name": w.name, "utilization": w.utilization,
             **({"resetsAt": timestamp(w.resets_at)} if w.resets_at > 0 else {})}
            for w in (live.windows if live else ())
        ],
        "conditions": conditions,
    }


def changed(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `current` status into `wanted`; empty when they already agree."""
    current = current or {}
    return {key: value for key, value in wanted.items() if current.get(key) != value}
