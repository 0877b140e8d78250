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
"""

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime


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


def last_used_by_key(entries: Iterable[UsageEntry]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for entry in entries:
        if entry.key_id and (entry.key_id not in latest or entry.started_at > latest[entry.key_id]):
            latest[entry.key_id] = entry.started_at
    return latest
