"""What an operator, or the key's holder, may see of a key and its usage: one JSON shape each, for every way out.

Rules owned here:
- A view never holds the key, its hash or the previous secret's hash: only what `public` lists.
- `switchboard keys show --json`, `keys list --json` and the admin API (`AdminService`, the edge's
  `/admin/v1/keys`) all print `public`; `usage` is the shape of `keys usage --json` and of the admin API's
  usage; `status` is what a key's holder reads (`/v1/usage`). Times are UTC ISO 8601 with a `Z`, money integer
  micro-dollars (and, beside a cost, `cost_usd` as a decimal string).
- A limit's use comes from the ledger, which knows calendar periods (tokens per day, the budgets); the rolling
  minute and the requests in flight come from the limiter when it is given (else `used` and `remaining` null).
"""

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from switchboard_auth.keys import KeyLimits, KeyRecord
from switchboard_auth.limits import LimitStatus
from switchboard_auth.usage import DIMENSION_FIELDS, SUMMARY_TOTALS, Dimension, UsageSummary


def iso(value: datetime | None) -> str | None:
    """An aware datetime as `2027-01-01T00:00:00Z` (None stays None)."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """Everything an operator may see about a key: no key, no hash."""
    details = record.details()
    return {
        "key_id": record.key_id,
        "name": record.name,
        "key_prefix": record.key_prefix,
        "state": record.state.value,
        "expired": record.is_expired(now),
        "expires_at": iso(record.expires_at),
        "allowed_platforms": list(record.allowed_platforms),
        "allowed_models": list(record.allowed_models),
        "groups": list(record.groups),
        "created_at": iso(record.created_at),
        "last_used_at": iso(record.last_used_at),
        "previous_secret_valid_until": iso(record.previous_valid_until),
        **details,
    }


def usage_totals(summary: UsageSummary) -> dict[str, Any]:
    """A summary's totals, with the cost also in USD (a decimal string: micro-dollars are exact, floats not)."""
    totals: dict[str, Any] = {name: getattr(summary, name) for name in SUMMARY_TOTALS}
    totals["cost_usd"] = f"{Decimal(summary.cost_micro_usd) / 1_000_000:.6f}"
    return totals


def summed(rows: Sequence[UsageSummary]) -> UsageSummary:
    return UsageSummary(**{name: sum(getattr(row, name) for row in rows) for name in SUMMARY_TOTALS})


def usage(key_id: str, name: str | None, since: datetime | None, until: datetime | None, by: Dimension,
          rows: Sequence[UsageSummary]) -> dict[str, Any]:
    """A key's usage over [since, until) grouped `by` one dimension: the shape `switchboard keys usage --json`
    prints (its rows' grouping fields as text, a day as YYYY-MM-DD) and the admin API answers."""
    fields = DIMENSION_FIELDS[by]
    return {
        "key_id": key_id, "name": name, "since": iso(since), "until": iso(until), "by": by.value,
        "rows": [{**{field: str(getattr(row, field)) for field in fields}, **usage_totals(row)} for row in rows],
        "total": usage_totals(summed(rows)),
    }


# How each limit is measured: its period, and what of a ledger summary it counts (None: the ledger cannot tell —
# a rolling minute or requests in flight live only in the limiter).
_LIMIT_PERIODS: dict[str, tuple[str, str | None]] = {
    "requests_per_minute": ("minute", None),
    "tokens_per_minute": ("minute", None),
    "tokens_per_day": ("day", "tokens"),
    "concurrency": ("in_flight", None),
    "daily_budget_micro_usd": ("day", "cost"),
    "monthly_budget_micro_usd": ("month", "cost"),
    "total_budget_micro_usd": ("total", "cost"),
}


def counted_tokens(summary: UsageSummary) -> int:
    """The tokens a per-day token limit counts (as `limits` charges them: every input and output token)."""
    return (summary.input_tokens + summary.output_tokens + summary.cache_read_input_tokens
            + summary.cache_creation_input_tokens)


def status(record: KeyRecord, now: datetime, periods: Mapping[str, tuple[datetime | None, datetime | None,
                                                                         UsageSummary]],
           live: Mapping[str, LimitStatus] | None = None) -> dict[str, Any]:
    """What a key's holder may see of it: the record (no secret), each configured limit with what is used and
    left of it by the ledger, and today's and this month's usage. `periods` maps "day", "month" and "total" to
    (start, end, the key's summary over it); "total" only when a total budget is set. `live`: the limiter's
    statuses (`Limiter.peek`), which know the rolling minute and the requests in flight."""
    limits = []
    for field in dataclasses.fields(KeyLimits):
        limit = getattr(record.limits, field.name)
        if limit is None:
            continue
        period, counts = _LIMIT_PERIODS[field.name]
        used = remaining = None
        resets_at = None
        if counts is not None:
            _, end, summary = periods[period]
            used = counted_tokens(summary) if counts == "tokens" else summary.cost_micro_usd
            remaining = max(0, limit - used)
            resets_at = iso(end)
        elif live and field.name in live:
            remaining = live[field.name].remaining
            used = max(0, limit - remaining)
            reset = live[field.name].reset_seconds
            resets_at = iso(now + timedelta(seconds=reset)) if reset > 0 else None
        limits.append({"name": field.name, "limit": limit, "period": period, "used": used, "remaining": remaining,
                       "resets_at": resets_at})
    return {
        "key": public(record, now),
        "limits": limits,
        "today": {"since": iso(periods["day"][0]), **usage_totals(periods["day"][2])},
        "this_month": {"since": iso(periods["month"][0]), **usage_totals(periods["month"][2])},
    }
