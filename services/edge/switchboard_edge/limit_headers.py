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


# Auth's limit name → its three header names and whether it is money (on every answer: built once).
_NAMES = {name: (f"x-ratelimit-limit-{suffix}", f"x-ratelimit-remaining-{suffix}", f"x-ratelimit-reset-{suffix}",
                 suffix.endswith("-usd"))
          for name, suffix in _SUFFIXES.items()}


def limit_headers(limits: Iterable[auth_pb2.LimitStatus]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for status in limits:
        names = _NAMES.get(status.name)
        if names is None:
            continue
        limit, remaining, reset_name, money = names
        headers[limit] = _usd(status.limit) if money else str(status.limit)
        headers[remaining] = _usd(status.remaining) if money else str(status.remaining)
        reset = seconds_of(status.reset)  # zero when unset
        if reset > 0:
            headers[reset_name] = f"{reset:.3f}".rstrip("0").rstrip(".") + "s"
    return headers


def _usd(micro: int) -> str:
    return f"{micro / 1_000_000:.6f}".rstrip("0").rstrip(".")
