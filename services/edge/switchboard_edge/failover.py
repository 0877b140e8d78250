"""What an upstream's error means: retry on another account, pass through, or mark the account.

Pure: status (or the vendor's error kind) in, verdict out. Before the first byte a retryable failure moves
the request to another account, while attempts (`max_attempts`) and time (`failover_budget_seconds`, counted
from the request's first attempt, `within_budget`) are left; when none is left, the client gets either the
upstream's own answer (a 429 carries the vendor's retry hints) or the gateway's error in its own format.

An error the vendor sends inside a stream that began with 200 is never retried (the client has seen it);
`in_stream` says what it means for the account.
"""

from dataclasses import dataclass

from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import SwitchboardError, UpstreamUnavailable


@dataclass(frozen=True, slots=True)
class Verdict:
    # The router outcome for the account.
    outcome: int
    # Another account may serve the request.
    retry: bool
    # With no account left, send the upstream's own answer (else `error`).
    pass_through: bool
    reason: str
    message: str = ""
    # Seconds the vendor asked to wait (e.g. Gemini's RetryInfo), when its body says so.
    retry_after: float | None = None

    def error(self) -> SwitchboardError:
        return UpstreamUnavailable(self.message)


def classify(status: int) -> Verdict:
    reason = f"http_{status}"
    if status in (429, 529):
        return Verdict(router_pb2.OUTCOME_RATE_LIMITED, True, status == 429, reason,
                       "The upstream API is rate limited." if status == 429 else
                       f"The upstream API is overloaded (HTTP {status}).")
    if status >= 500:
        return Verdict(router_pb2.OUTCOME_UPSTREAM_ERROR, True, False, reason,
                       f"The upstream API failed (HTTP {status}).")
    if status in (401, 403):
        # The account's credential was refused: not the client's fault.
        return Verdict(router_pb2.OUTCOME_AUTH_FAILED, True, False, reason,
                       f"The upstream API refused the gateway's account (HTTP {status}).")
    return Verdict(router_pb2.OUTCOME_CLIENT_ERROR, False, True, reason)


# In-stream error kinds (`upstream.base.error_kind`, lower-cased) that say the vendor is busy: Anthropic's
# `overloaded_error` (Bedrock's ServiceUnavailableException arrives as one), the Codex backend's
# `server_is_overloaded` and `slow_down`.
_OVERLOADED = ("overloaded", "slow_down")
# ... and that say the account reached a rate or usage limit: Anthropic's `rate_limit_error` (Bedrock's
# ThrottlingException), OpenAI's `rate_limit_exceeded` and `insufficient_quota`, the Codex backend's
# `usage_limit_reached`, Google's `RESOURCE_EXHAUSTED`.
_LIMITED = ("rate_limit", "usage_limit_reached", "insufficient_quota", "resource_exhausted")


def in_stream(kind: str) -> int:
    """The router outcome for the vendor's own error event inside a stream that began with 200: overloaded and
    rate or usage limits are `OUTCOME_RATE_LIMITED` (the router tells them apart by the kind, reported with
    the error), anything else `OUTCOME_UPSTREAM_ERROR` (towards the account's circuit breaker)."""
    kind = kind.lower()
    if any(part in kind for part in _OVERLOADED + _LIMITED):
        return router_pb2.OUTCOME_RATE_LIMITED
    return router_pb2.OUTCOME_UPSTREAM_ERROR


def within_budget(first_attempt: float, now: float, budget_seconds: float) -> bool:
    """Whether another attempt may start: the time since the request's first attempt began (both readings of
    one monotonic clock) has not passed the failover budget."""
    return now - first_attempt <= budget_seconds
