"""The router's Prometheus families (names and labels from METRICS.md).

The account label is the account's name, never anything from its credential.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from switchboard_common import platforms
from switchboard_router.accounts import Account, State
from switchboard_router.state import Health
from switchboard_router.wire import live_state

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

SKIPS = Counter(
    "switchboard_router_skips_total",
    "Candidate accounts a pick passed over, by reason (excluded, unschedulable, held, probing, window, concurrency).",
    ["reason"],
)

REDIS_DEGRADED = Gauge(
    "switchboard_router_redis_degraded",
    "1 while the shared state's Redis cannot be reached (state then per replica in memory, or picks refused).",
)
REDIS_DEGRADED_OPERATIONS = Counter(
    "switchboard_router_redis_degraded_operations_total",
    "Shared-state calls (holds, windows, breaker, sessions, slots) made in memory because Redis could not be reached.",
)

_pick_counters: dict[str, Counter] = {}


def count_pick(account: Account) -> None:
    counter = _pick_counters.get(account.id)
    if counter is None:
        counter = _pick_counters[account.id] = PICKS.labels(account.platform, account.name)
    counter.inc()


def count_skips(skips: Mapping[str, int]) -> None:
    for reason, count in skips.items():
        SKIPS.labels(reason).inc(count)


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


class AccountGauges(Collector):
    """Per-account live gauges, read from the router's state at scrape time (nothing kept per request):
    in-flight requests, seconds until each hold ends (-1: until cleared) and usage-window utilization."""

    def __init__(self, accounts: Callable[[], Iterable[Account]], health: Callable[[], Health],
                 in_flight: Callable[[], Mapping[str, int]]) -> None:
        self._accounts, self._health, self._in_flight = accounts, health, in_flight

    def collect(self) -> Iterator[GaugeMetricFamily]:
        accounts = {account.id: account for account in self._accounts()}
        health, counts, now = self._health(), self._in_flight(), time.time()
        flight = GaugeMetricFamily("switchboard_router_account_in_flight", "Requests holding a lease on the account.",
                                   labels=["platform", "account"])
        for account in accounts.values():
            flight.add_metric([account.platform, account.name], counts.get(account.id, 0))
        held = GaugeMetricFamily("switchboard_router_account_hold_seconds",
                                 "Seconds until the account's hold ends (-1: until cleared), by model family and kind.",
                                 labels=["platform", "account", "family", "kind"])
        for (account_id, family), holds in health.holds.items():
            holder = accounts.get(account_id)
            if holder is None:
                continue
            for hold in holds:
                left = -1.0 if hold.until is None else max(0.0, hold.until - now)
                held.add_metric([holder.platform, holder.name, family, hold.kind.value], left)
        windows = GaugeMetricFamily("switchboard_router_account_window_utilization",
                                    "The vendor's usage window utilization (0..1) as last reported.",
                                    labels=["platform", "account", "family", "window"])
        for (account_id, family), kept in health.windows.items():
            owner = accounts.get(account_id)
            if owner is None:
                continue
            for window in kept:
                windows.add_metric([owner.platform, owner.name, family, window.name], window.utilization)
        states = GaugeMetricFamily("switchboard_router_account_state",
                                   "1 for the account's state now (ready, cooling, error, disabled), 0 for the others.",
                                   labels=["platform", "account", "state"])
        for account in accounts.values():
            now_in = live_state(account, health)
            for state in State:
                states.add_metric([account.platform, account.name, state.value], 1.0 if state is now_in else 0.0)
        yield flight
        yield held
        yield windows
        yield states
