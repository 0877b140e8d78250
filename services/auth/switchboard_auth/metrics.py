"""Auth's Prometheus families (names from design/METRICS.md).

Rule owned here: no label ever carries a key, a key hash, a key_id or a
credential. Label children are created once so the hot path only increments.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from switchboard_auth.policy import Reason, Verdict
from switchboard_auth.usage import UsageEntry

DECISIONS = Counter(
    "switchboard_auth_decisions_total",
    "Authorize and Authenticate decisions, by decision (allow, deny) and reason.",
    ["decision", "reason"],
)
USAGE_RECORDS = Counter(
    "switchboard_auth_usage_records_total",
    "Usage records received, by result (accepted, duplicate, invalid).",
    ["result"],
)
USAGE_TOKENS = Counter(
    "switchboard_usage_tokens_total",
    "Tokens reported in newly accepted usage records, by platform, model and token type.",
    ["platform", "model", "token_type"],
)

USAGE_COST = Counter(
    "switchboard_usage_cost_total",
    "What newly accepted usage records cost at list prices, in USD, by platform and model (unpriced ones left out).",
    ["platform", "model"],
)

REDIS_DEGRADED = Gauge(
    "switchboard_auth_redis_degraded",
    "1 while the limits' Redis cannot be reached (limits then per replica in memory, or refused), else 0.",
)
REDIS_DEGRADED_OPERATIONS = Counter(
    "switchboard_auth_redis_degraded_operations_total",
    "Limit admissions and settlements made in this replica's memory because Redis could not be reached.",
)
STALE_KEY_LOOKUPS = Counter(
    "switchboard_auth_stale_key_lookups_total",
    "Key lookups answered from an expired cache entry because the key store could not be reached.",
)

_DECISION_CHILDREN = {
    reason: DECISIONS.labels("allow" if reason is Reason.OK else "deny", reason.value) for reason in Reason
}
_ACCEPTED = USAGE_RECORDS.labels("accepted")
_DUPLICATE = USAGE_RECORDS.labels("duplicate")
_INVALID = USAGE_RECORDS.labels("invalid")


def count_decision(verdict: Verdict) -> None:
    _DECISION_CHILDREN[verdict.reason].inc()


def count_usage(received: int, accepted: Iterable[UsageEntry]) -> None:
    """Counts tokens of new records only, so a retried batch is never counted twice."""
    new = 0
    for entry in accepted:
        new += 1
        for token_type, count in entry.token_counts():
            USAGE_TOKENS.labels(entry.platform, entry.model, token_type).inc(count)
        if entry.cost_micro_usd:
            USAGE_COST.labels(entry.platform, entry.model).inc(entry.cost_micro_usd / 1_000_000)
    _ACCEPTED.inc(new)
    _DUPLICATE.inc(received - new)


def count_invalid_usage() -> None:
    _INVALID.inc()
