"""The router's Prometheus families (names and labels from METRICS.md).

The account label is the account's name, never anything from its credential.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from switchboard_common import platforms
from switchboard_router.accounts import Account, State

PICKS = Counter(
    "switchboard_router_picks_total",
    "Accounts handed out by Pick.",
    ["platform", "account"],
)
ACCOUNTS = Gauge(
    "switchboard_router_accounts",
    "Accounts in the pool by platform and state.",
    ["platform", "state"],
)
UPSTREAM_REQUESTS = Counter(
    "switchboard_upstream_requests_total",
    "Upstream calls reported back to the router, by outcome.",
    ["platform", "account", "outcome"],
)

HOLDS = Counter(
    "switchboard_router_holds_total",
    "Accounts (or one model family of them) taken out of rotation, by kind.",
    ["platform", "account", "kind"],
)

SESSIONS = Counter(
    "switchboard_router_sessions_total",
    "Picks for a conversation: kept on its account (hit), moved to another (moved), or first bound (new).",
    ["result"],
)

_pick_counters: dict[str, Counter] = {}


def count_pick(account: Account) -> None:
    counter = _pick_counters.get(account.id)
    if counter is None:
        counter = _pick_counters[account.id] = PICKS.labels(account.platform, account.name)
    counter.inc()


def count_outcome(platform: str, account_name: str, outcome: str) -> None:
    UPSTREAM_REQUESTS.labels(platform, account_name, outcome).inc()


def set_account_states(accounts: Iterable[Account]) -> None:
    """Sets every (platform, state) cell, zeros included, so removed accounts stop counting."""
    tally = {(p, s.value): 0 for p in platforms.ALL for s in State}
    for account in accounts:
        key = (account.platform, account.state.value)
        tally[key] = tally.get(key, 0) + 1
    for (platform, state), value in tally.items():
        ACCOUNTS.labels(platform, state).set(value)


def count_hold(platform: str, account_name: str, kind: str) -> None:
    HOLDS.labels(platform, account_name, kind).inc()


def count_session(result: str) -> None:
    SESSIONS.labels(result).inc()
