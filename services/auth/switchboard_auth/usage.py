"""What one usage record is, and what it implies beyond the ledger row.

Rules owned here:
- The ledger is idempotent per `request_id`: a record without one cannot be
  written (the service drops it), a repeated one is ignored and counted nowhere.
- Token kinds are named as in the OpenTelemetry GenAI conventions
  (input, output, cached_input, cache_creation_input, reasoning).
- Cache writes are split by how long they last: `cache_creation_5m_input_tokens`
  and `cache_creation_1h_input_tokens` are parts of `cache_creation_input_tokens`
  (never more than it together; both 0 when the vendor gave no split), so they
  are not token kinds of their own and `token_counts` does not yield them.
- A key's `last_used_at` is the latest `started_at` among its new records.
- `end_reason` is stored as the edge sent it ("complete", "client_closed",
  "upstream_broke", "upstream_ended", "upstream_error", "timeout", "shutdown",
  "error"; "" from edges older than the field): an unknown value is kept, not
  dropped, since dropping would lose the tokens.
- A request the upstream failed is recorded as `failed` and never charged
  (`cost_micro_usd` 0), but keeps whatever tokens the vendor reported: it failed
  when it ended with an error status (>= 400) or as an error (`upstream_error`,
  `error`) without a token. A request the client or the gateway ended
  (`client_closed`, 499; `shutdown`, 503) did not fail upstream: the vendor bills
  what it did, so it is charged like any other. `upstream_failed` is that rule's
  one home.
- `cost_micro_usd` is what the vendor charges for the record's tokens at list
  price (`pricing`), in whole micro-dollars; None when no price is known.
- A summary (`Ledger.summary`) totals the entries that started in a time range,
  grouped by any of key, model (the platform and the model billed: `upstream_model`,
  else `model`), account and UTC day. Its cost is that of the priced entries;
  `unpriced_requests` says how many had none, so the cost is a floor when it is
  not 0.
"""

import dataclasses
import enum
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class UsageEntry:
    """One finished client request, as the ledger stores it."""

    request_id: str
    key_id: str
    platform: str
    model: str
    started_at: datetime
    recorded_at: datetime
    account_id: str = ""
    upstream_model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    status_code: int = 0
    stream: bool = False
    truncated: bool = False
    duration_seconds: float = 0.0
    time_to_first_token_seconds: float | None = None
    client_format: str = ""
    admission_id: str = ""
    session_id: str = ""
    usage_estimated: bool = False  # some counts are the edge's estimate, not the vendor's report
    end_reason: str = ""
    cache_creation_5m_input_tokens: int = 0  # of cache_creation_input_tokens
    cache_creation_1h_input_tokens: int = 0  # of cache_creation_input_tokens
    failed: bool = False  # the upstream failed it (`upstream_failed`): never charged
    cost_micro_usd: int | None = None  # None: no price known
    client_app: str = ""  # the client program the edge recognised ("claude-code", ...; "" for another)

    def has_tokens(self) -> bool:
        return any(True for _ in self.token_counts())

    def token_counts(self) -> Iterator[tuple[str, int]]:
        """(token_type, count) for every non-zero count."""
        for token_type, count in (
            ("input", self.input_tokens),
            ("output", self.output_tokens),
            ("cached_input", self.cache_read_input_tokens),
            ("cache_creation_input", self.cache_creation_input_tokens),
            ("reasoning", self.reasoning_tokens),
        ):
            if count > 0:
                yield token_type, count


# How requests end that the client or the gateway, not the upstream, cut short (statuses 499 and 503).
_ENDED_BY_CALLER = frozenset({"client_closed", "shutdown"})
# How requests end that failed, when they ended before the vendor reported a token.
_ERROR_ENDS = frozenset({"upstream_error", "error"})


def upstream_failed(status_code: int, end_reason: str, has_tokens: bool) -> bool:
    """Whether the upstream failed the request (so it is never charged)."""
    if end_reason in _ENDED_BY_CALLER:
        return False
    return status_code >= 400 or (end_reason in _ERROR_ENDS and not has_tokens)


def last_used_by_key(entries: Iterable[UsageEntry]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for entry in entries:
        if entry.key_id and (entry.key_id not in latest or entry.started_at > latest[entry.key_id]):
            latest[entry.key_id] = entry.started_at
    return latest


class Dimension(enum.StrEnum):
    """What a usage summary may be grouped by."""

    KEY = "key"
    MODEL = "model"  # the platform and the model it billed
    ACCOUNT = "account"
    DAY = "day"  # of started_at, in UTC


# The `UsageSummary` fields each dimension fills, in this order.
DIMENSION_FIELDS: dict[Dimension, tuple[str, ...]] = {
    Dimension.KEY: ("key_id",),
    Dimension.MODEL: ("platform", "model"),
    Dimension.ACCOUNT: ("account_id",),
    Dimension.DAY: ("day",),
}
# The totals of a summary, in the order the backends select them.
SUMMARY_TOTALS = (
    "requests", "failed_requests", "input_tokens", "output_tokens", "cache_read_input_tokens",
    "cache_creation_input_tokens", "reasoning_tokens", "cost_micro_usd", "unpriced_requests",
)
# ... as both backends' SQL computes them (the same text on SQLite and PostgreSQL).
SUMMARY_TOTALS_SQL = (
    "COUNT(*), COUNT(*) FILTER (WHERE failed), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_input_tokens),"
    " SUM(cache_creation_input_tokens), SUM(reasoning_tokens), COALESCE(SUM(cost_micro_usd), 0),"
    " COUNT(*) FILTER (WHERE cost_micro_usd IS NULL)"
)


@dataclasses.dataclass(frozen=True, slots=True)
class UsageSummary:
    """The totals of one group of ledger entries; a field of a dimension not grouped by is None."""

    key_id: str | None = None
    platform: str | None = None
    model: str | None = None
    account_id: str | None = None
    day: date | None = None
    requests: int = 0
    failed_requests: int = 0  # of requests
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0  # of output_tokens
    cost_micro_usd: int = 0  # of the priced requests
    unpriced_requests: int = 0  # requests whose cost is not known


def check_dimensions(by: Sequence[Dimension]) -> tuple[Dimension, ...]:
    dimensions = tuple(Dimension(d) for d in by)
    if len(set(dimensions)) != len(dimensions):
        raise ValueError(f"a summary is grouped by each dimension at most once, not {', '.join(dimensions)}")
    return dimensions


def summary_of(by: Sequence[Dimension], row: Sequence[Any]) -> UsageSummary:
    """A summary from a backend's row: the values of `by`'s fields (a day as YYYY-MM-DD), then SUMMARY_TOTALS."""
    names = [name for dimension in by for name in DIMENSION_FIELDS[dimension]]
    values: dict[str, Any] = dict(zip(names, row, strict=False))
    if "day" in values:
        values["day"] = date.fromisoformat(values["day"])
    totals = row[len(names):]  # all NULL but the counts when no entry matched and nothing was grouped
    values.update((name, int(total or 0)) for name, total in zip(SUMMARY_TOTALS, totals, strict=True))
    return UsageSummary(**values)
