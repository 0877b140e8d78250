"""What an upstream's error status means: retry on another account, pass through, or mark the account.

Pure: status in, verdict out. Before the first byte a retryable failure moves the request to another
account; when none is left, the client gets either the upstream's own answer (a 429 carries the vendor's
retry hints) or the gateway's error in its own format.
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
