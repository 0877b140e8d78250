"""A limited key's limits as response headers (`x-ratelimit-limit-<what>`, `-remaining-`, `-reset-`), on its
answers and on the 429 a limit makes, so clients see what is left before they hit it.

The names follow OpenAI's (`requests`, `tokens`; resets like `20s`), with the limits OpenAI has no header for
named the same way; money in USD. The upstream account's own limits never reach the client.
"""

from collections.abc import Iterable

from switchboard.auth.v1 import auth_pb2
from switchboard_edge.durations import seconds_of

# Auth's limit name → the header suffix; budgets (micro-dollars) are shown in USD.
_SUFFIXES = {
    "requests_per_minute": "requests",
    "tokens_per_minute": "tokens",
    "tokens_per_day": "tokens-day",
    "concurrency": "concurrency",
    "daily_budget_micro_usd": "budget-day-usd",
    "monthly_budget_micro_usd": "budget-month-usd",
    "total_budget_micro_usd": "budget-total-usd",
}


def limit_headers(limits: Iterable[auth_pb2.LimitStatus]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for status in limits:
        suffix = _SUFFIXES.get(status.name)
        if suffix is None:
            continue
        money = suffix.endswith("-usd")
        headers[f"x-ratelimit-limit-{suffix}"] = _usd(status.limit) if money else str(status.limit)
        headers[f"x-ratelimit-remaining-{suffix}"] = _usd(status.remaining) if money else str(status.remaining)
        reset = seconds_of(status.reset)  # zero when unset
        if reset > 0:
            headers[f"x-ratelimit-reset-{suffix}"] = f"{reset:.3f}".rstrip("0").rstrip(".") + "s"
    return headers


def _usd(micro: int) -> str:
    return f"{micro / 1_000_000:.6f}".rstrip("0").rstrip(".")
