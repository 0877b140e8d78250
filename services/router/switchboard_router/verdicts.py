"""What one reported upstream outcome means for the account that served it. Pure: no I/O, no clock.

The rule this module owns: tell the kinds of upstream trouble apart, so that an account is held exactly as
long as the vendor means, and only for what the vendor refused.

- THROTTLED  a 429 that names no exhausted window: a short cooldown (the vendor's `retry-after`, else a
             default), never longer than a cap. A 429 without any reset is a throttle, not a spent window.
- WINDOW     a usage window is spent (Anthropic `anthropic-ratelimit-unified-*` rejected, Codex used 100 %
             or `usage_limit_reached`): unusable until the reset the vendor announced, for the family the
             window concerns ("" is the whole account; `7d_sonnet` only Sonnet).
- OVERLOADED 529 / `overloaded_error` (the Codex backend's `server_is_overloaded`, `slow_down`): a short
             cooldown; the vendor is busy, not the account.
- ERROR      the account's credential was refused (401/403): held until cleared, with the vendor's message.
- BREAKER    5xx, broken connections, timeouts count towards the router's circuit breaker (`Effects.breaker`);
             the router opens the BREAKER hold itself after consecutive failures, and a success resets it.

The same kinds arrive inside streams that began with 200 (Anthropic's `event: error`, Responses' `error` /
`response.failed`, an OpenAI or Gemini error chunk): the edge reports them with status 200, the vendor's kind
in `upstream_error` and an outcome that matches it (`OUTCOME_RATE_LIMITED` for overloaded and rate or usage
limits, else `OUTCOME_UPSTREAM_ERROR`), and they are judged by the kind. The `retry-after` of such an answer
came with its 200, before the error (Anthropic sends one on successful streams), so it sets no hold's length.

A refusal about the request's class ("Extra usage is required for long context requests", the 1M-context
or overage gates) concerns that request only: no hold. Peers have locked accounts for hours by confusing it
with a spent window.

Usage windows are read from every outcome, successes included (the window headers arrive on 200 answers):
`Effects.windows`, for selection to prefer accounts with room.

Header sources (lower-case names, as the edge reports them in `upstream_headers`):
- Anthropic subscription windows: `anthropic-ratelimit-unified-{status,reset,representative-claim}` and per
  window `anthropic-ratelimit-unified-<window>-{status,utilization,reset}` with `<window>` = `5h`, `7d` or a
  scoped `7d_<scope>` (`7d_sonnet`, `7d_opus`, `7d_oi`); utilization is a fraction (1.0 spent), resets are
  Unix seconds, statuses `allowed`, `allowed_warning`, `rejected` (`rate_limited` in older reports).
- Codex backend: `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at,reset-after-seconds}`
  (percent 0..100; `reset-at` Unix seconds, newer than `reset-after-seconds`); an exhausted window is a 429
  whose body says `usage_limit_reached` with `resets_at` / `resets_in_seconds` (the edge puts them in
  `upstream_error`, see `switchboard_edge.upstream.base.upstream_error`).
- Retry hints: `retry-after-ms`, `retry-after` (seconds or an HTTP date), OpenAI's `x-ratelimit-reset-*`
  (durations like `6m0s`) for a bucket whose `x-ratelimit-remaining-*` is 0.
"""

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from switchboard.router.v1 import router_pb2
from switchboard_router.state import HoldKind

# -- effects -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    """Do not pick the account's `family` ("" the whole account) until `until` (Unix seconds; None: until
    cleared)."""

    kind: HoldKind
    family: str
    until: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Window:
    """A usage window as the vendor reported it: "5h", "7d", "7d_sonnet", "primary", "secondary"."""

    family: str
    name: str
    utilization: float  # 0..1
    resets_at: float | None  # Unix seconds; None: not said


class Breaker(enum.Enum):
    NONE = "none"  # says nothing about the account's health (the client's 4xx, a cancelled request)
    SUCCESS = "success"  # ends a failure streak
    FAILURE = "failure"  # one more consecutive failure


@dataclass(frozen=True, slots=True)
class Effects:
    holds: tuple[Hold, ...] = ()
    windows: tuple[Window, ...] = ()
    breaker: Breaker = Breaker.NONE
    # The vendor refused this request's class (long context, extra usage): its message; no hold follows.
    class_refusal: str = ""


@dataclass(frozen=True, slots=True)
class VerdictSettings:
    throttle_default_seconds: float = 30.0  # a 429 throttle that said no delay
    throttle_max_seconds: float = 300.0  # no throttle lasts longer, whatever the vendor said
    overloaded_seconds: float = 15.0
    # A spent window's reset further away than this is taken as this (a garbled header must not lock an
    # account for years); longer than any window a vendor announces (weekly, a monthly overage reset).
    window_max_seconds: float = 31 * 86400.0


DEFAULT_SETTINGS = VerdictSettings()


@dataclass(frozen=True, slots=True)
class Reported:
    """One outcome as the edge reported it, with the account's platform and the router's clock."""

    platform: str
    outcome: int  # router_pb2.Outcome
    status: int  # HTTP status; 0 when there was none
    now: float  # Unix seconds
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    upstream_error: str = ""  # "<vendor's kind>: <message>", at most 300 characters
    model: str = ""  # the upstream model
    error_type: str = ""  # the edge's own reason ("http_429", "client_closed", "oauth_refresh", ...)


def reported(request: router_pb2.ReportOutcomeRequest, platform: str, now: float) -> Reported:
    return Reported(platform, request.outcome, request.status_code, now, dict(request.upstream_headers),
                    request.upstream_error, request.model, request.error_type)


# -- model families ------------------------------------------------------------------------------------------

_FAMILIES = ("opus", "sonnet", "haiku")
# claude-opus-4-1, claude-fable-5-1: a family named the same way as today's is its own family.
_NAMED_FAMILY = re.compile(r"claude-([a-z]{3,})-\d")


def family(model: str) -> str:
    """The Anthropic model family a model belongs to ("opus", "sonnet", "haiku"); "" for every other model.

    Reads every spelling the platforms use: `claude-opus-4-1`, `claude-sonnet-4-5-20250929`,
    `claude-3-5-haiku-latest`, Bedrock's `us.anthropic.claude-3-7-sonnet-20250219-v1:0`, Vertex's
    `claude-3-5-sonnet-v2@20241022`.
    """
    name = model.lower()
    if "claude" not in name:
        return ""
    for known in _FAMILIES:
        if known in name:
            return known
    named = _NAMED_FAMILY.search(name)
    return named.group(1) if named else ""


# -- the verdict ---------------------------------------------------------------------------------------------

_BREAKING = frozenset({router_pb2.OUTCOME_UPSTREAM_ERROR, router_pb2.OUTCOME_CONNECT_ERROR,
                       router_pb2.OUTCOME_TIMEOUT})
# A stream cut short because the client left or the edge was restarting says nothing about the upstream
# (the edge's reasons, `switchboard_edge.exchange`).
_NOT_THE_UPSTREAMS = frozenset({"client_closed", "shutdown"})


def decide(report: Reported, settings: VerdictSettings = DEFAULT_SETTINGS) -> Effects:
    """The holds, windows and breaker step one outcome calls for."""
    readings = _readings(report.headers, report.now)
    windows = tuple(reading.window() for reading in readings if reading.recordable)
    outcome, status = report.outcome, report.status
    if outcome == router_pb2.OUTCOME_SUCCESS:
        return Effects(windows=windows, breaker=Breaker.SUCCESS)
    if 0 < status < 400:
        report = _in_stream(report)
    kind, message = _split(report.upstream_error)
    model_family = family(report.model)
    if status == 529 or any(part in kind for part in _OVERLOADED):
        delay = _retry_after(report.headers, report.now)
        seconds = min(delay, settings.throttle_max_seconds) if delay else settings.overloaded_seconds
        reason = report.upstream_error or f"HTTP {status}"
        return Effects((Hold(HoldKind.OVERLOADED, model_family, report.now + seconds, reason),), windows)
    if outcome == router_pb2.OUTCOME_RATE_LIMITED or status == 429:
        holds, refusal = _limited(report, readings, kind, message, model_family, settings)
        return Effects(holds, windows, class_refusal=refusal)
    if outcome == router_pb2.OUTCOME_AUTH_FAILED:
        reason = report.upstream_error or report.error_type or f"HTTP {status}"
        return Effects((Hold(HoldKind.ERROR, "", None, reason),), windows)
    if outcome in _BREAKING or (outcome == router_pb2.OUTCOME_TRUNCATED
                                and report.error_type not in _NOT_THE_UPSTREAMS):
        return Effects(windows=windows, breaker=Breaker.FAILURE)
    return Effects(windows=windows)


_REFUSED_CLASS = ("extra usage", "long context", "usage credits required")
_OVERLOADED = ("overloaded", "slow_down")
_RETRY_HEADERS = frozenset({"retry-after", "retry-after-ms"})


def _in_stream(report: Reported) -> Reported:
    """An error inside an answer that began with a success status: its retry hints came with that status,
    before the error, and are not the vendor's word on it."""
    if not _RETRY_HEADERS.intersection(report.headers):
        return report
    headers = {name: value for name, value in report.headers.items() if name not in _RETRY_HEADERS}
    return replace(report, headers=headers)


def _limited(report: Reported, readings: list["_Reading"], kind: str, message: str, model_family: str,
             settings: VerdictSettings) -> tuple[tuple[Hold, ...], str]:
    """A 429: a spent window (held until it resets), the request's class refused (no hold), or a throttle.

    In this order: a spent account-wide window decides even when the message speaks of extra usage (the
    account is spent either way); then a class refusal; then a spent family window; then the overall
    verdict alone (no per-window detail); else a throttle."""
    now, headers = report.now, report.headers
    latest = now + settings.window_max_seconds
    # A window that said no reset of its own resets with the representative one, else after retry-after.
    fallback = _instant(headers.get(f"{_UNIFIED}reset")) or _later(now, _retry_after(headers, now))
    spent = [reading for reading in readings if reading.spent]
    names = [reading.name for reading in spent if not reading.scope]
    resets = [reading.resets_at or fallback for reading in spent if not reading.scope]
    if kind == "usage_limit_reached" or "usage_limit_reached" in message:  # Codex says it in the body
        names.append("usage_limit_reached")
        resets.append(_body_reset(report.upstream_error, now) or fallback)
    until = max((reset for reset in resets if reset), default=0.0)
    if names and until > now:
        return (_window("", until, latest, names),), ""
    if any(phrase in message.lower() for phrase in _REFUSED_CLASS):
        return (), message
    families = _spent_families(spent, model_family, fallback, now, latest)
    if families:
        return families, ""
    claimed = _claimed(headers, readings, model_family, now, latest)
    if claimed is not None:
        return (claimed,), ""
    reason = report.upstream_error or f"HTTP {report.status}"
    if kind == "insufficient_quota":  # OpenAI's spent billing quota: no reset to wait for, so the longest throttle
        return (Hold(HoldKind.THROTTLED, model_family, now + settings.throttle_max_seconds, reason),), ""
    delay = _retry_after(headers, now) or _bucket_reset(headers) or settings.throttle_default_seconds
    return (Hold(HoldKind.THROTTLED, model_family, now + min(delay, settings.throttle_max_seconds), reason),), ""


def _spent_families(spent: list["_Reading"], model_family: str, fallback: float | None, now: float,
                    latest: float) -> tuple[Hold, ...]:
    """Spent family windows: each held for its own family (7d_sonnet: "sonnet"); a scope that names no family
    (7d_oi) holds the family of the request it refused, and nothing when that request has none."""
    by_family: dict[str, tuple[float, list[str]]] = {}
    for reading in spent:
        if not reading.scope:
            continue
        target = reading.scope if reading.scope in _FAMILIES or reading.scope == model_family else model_family
        reset = reading.resets_at or fallback
        if target and reset and reset > now:
            until, names = by_family.get(target, (now, []))
            by_family[target] = (max(until, reset), [*names, reading.name])
    return tuple(_window(target, until, latest, names) for target, (until, names) in by_family.items())


def _claimed(headers: Mapping[str, str], readings: list["_Reading"], model_family: str, now: float,
             latest: float) -> Hold | None:
    """Only the overall verdict (`unified-status: rejected`), no window detail: the representative claim
    (`five_hour`, `seven_day`, `seven_day_opus`, ...) says which window refused, until the overall reset."""
    if headers.get(f"{_UNIFIED}status") not in _REJECTED or any(reading.status for reading in readings):
        return None
    claim = headers.get(f"{_UNIFIED}representative-claim", "")
    scope = claim.removeprefix("seven_day").removeprefix("_") if claim.startswith("seven_day") else ""
    target = scope if scope in _FAMILIES or scope == model_family else (model_family if scope else "")
    reset = _instant(headers.get(f"{_UNIFIED}reset"))
    if reset is None or reset <= now or (scope and not target):
        return None
    return _window(target, reset, latest, [claim or "unified"])


def _window(family: str, until: float, latest: float, names: list[str]) -> Hold:
    return Hold(HoldKind.WINDOW, family, min(until, latest), f"usage window {', '.join(names)} exhausted")


# -- reading the vendors' headers ----------------------------------------------------------------------------

_UNIFIED = "anthropic-ratelimit-unified-"
# <window>-<field>: 5h-status, 7d-utilization, 7d_sonnet-reset (not overage-*, representative-claim, ...).
_UNIFIED_WINDOW = re.compile(r"(\d+[a-z]+)(?:_([a-z0-9_]+))?-(status|utilization|reset)")
_REJECTED = frozenset({"rejected", "rate_limited"})
_CODEX_SLOTS = ("primary", "secondary")


@dataclass(slots=True)
class _Reading:
    name: str
    scope: str  # "" account-wide; "sonnet" for 7d_sonnet
    spent: bool
    utilization: float | None
    resets_at: float | None
    status: str = ""

    @property
    def recordable(self) -> bool:
        return self.utilization is not None

    def window(self) -> Window:
        """As recorded: the window's family is its scope ("sonnet" for 7d_sonnet, "" account-wide). A scope
        that names no model family (`7d_oi`) stays as it is: a family no model belongs to, so it is kept for
        the record and never keeps a model from being picked."""
        return Window(self.scope, self.name, min(1.0, max(0.0, self.utilization or 0.0)), self.resets_at)


def _readings(headers: Mapping[str, str], now: float) -> list[_Reading]:
    readings: dict[str, _Reading] = {}
    for name, value in headers.items():
        if not name.startswith(_UNIFIED):
            continue
        match = _UNIFIED_WINDOW.fullmatch(name, len(_UNIFIED))
        if match is None:
            continue
        base, scope, part = match.groups()
        window = f"{base}_{scope}" if scope else base
        reading = readings.setdefault(window, _Reading(window, scope or "", False, None, None))
        if part == "status":
            reading.status = value.strip().lower()
        elif part == "utilization":
            reading.utilization = _number(value)
        else:
            reading.resets_at = _instant(value)
    for reading in readings.values():
        # The status decides when given (a spent reading may say "allowed" on its way to reset).
        reading.spent = (reading.status in _REJECTED if reading.status
                         else reading.utilization is not None and reading.utilization >= 1.0)
        if reading.utilization is None and reading.spent:
            reading.utilization = 1.0
    return [*readings.values(), *_codex(headers, now)]


def _codex(headers: Mapping[str, str], now: float) -> Iterable[_Reading]:
    for slot in _CODEX_SLOTS:
        used = _number(headers.get(f"x-codex-{slot}-used-percent"))
        if used is None:
            continue
        reset = _instant(headers.get(f"x-codex-{slot}-reset-at"))
        if reset is None:
            after = _number(headers.get(f"x-codex-{slot}-reset-after-seconds"))
            reset = now + after if after else None
        minutes = _number(headers.get(f"x-codex-{slot}-window-minutes"))
        if not minutes and reset is None and not used:
            continue  # the placeholder of a window the plan does not have (all zero)
        yield _Reading(slot, "", used >= 100.0, used / 100.0, reset)


def _split(upstream_error: str) -> tuple[str, str]:
    """("usage_limit_reached", "The usage limit has been reached ...") from the edge's excerpt."""
    kind, colon, message = upstream_error.partition(": ")
    if not colon or " " in kind:
        return "", upstream_error
    return kind.lower(), message


_BODY_RESETS_AT = re.compile(r"\bresets_at=([^,;)\s]+)")
_BODY_RESETS_IN = re.compile(r"\bresets_in_seconds=(\d+(?:\.\d+)?)")


def _body_reset(upstream_error: str, now: float) -> float | None:
    at = _BODY_RESETS_AT.search(upstream_error)
    if at is not None and (instant := _instant(at.group(1))) is not None:
        return instant
    within = _BODY_RESETS_IN.search(upstream_error)
    return now + float(within.group(1)) if within is not None else None


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None if neither."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _bucket_reset(headers: Mapping[str, str]) -> float | None:
    """OpenAI's reset of a spent request or token bucket (`x-ratelimit-reset-requests: 6m0s`)."""
    resets = [_duration(headers.get(f"x-ratelimit-reset-{bucket}", ""))
              for bucket in ("requests", "tokens") if headers.get(f"x-ratelimit-remaining-{bucket}") == "0"]
    return max((reset for reset in resets if reset), default=None)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration(value: str) -> float | None:
    """A Go-style duration ("1m30s", "20ms", "6m0s") or plain seconds, in seconds."""
    value = value.strip()
    if (seconds := _number(value)) is not None:
        return seconds
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _instant(value: str | None) -> float | None:
    """A moment as Unix seconds (milliseconds when that large) or ISO 8601 (UTC unless it says); None when
    empty, zero or unreadable."""
    if not value or not value.strip():
        return None
    number = _number(value)
    if number is not None:
        if number == 0:
            return None
        return number / 1000.0 if number > 1e11 else number
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _later(now: float, seconds: float | None) -> float | None:
    return now + seconds if seconds else None
