"""Everything that decides which account serves a request lives here.

A pick runs a small pipeline:

1. **Static eligibility**, cached per pool snapshot and (platforms, model, groups):
   the account is enabled and not in error, its platform is one of the requested
   platforms (a filter; their order does not rank), one of its model patterns
   matches, and the key's groups may use it (an account without groups is the
   default pool, open to every key; one with groups needs a shared group). The
   result is grouped into tiers: accounts of the preferred platforms (those
   speaking the client's own format) before the others (reached through a
   format translator), then by priority, lowest number first, each tier in
   pool order, with the upstream model name already resolved.
2. **Per-request filters**, run on the cached candidates: the failover
   exclusion list, then what the shared state says now (`Live`, read without
   I/O): not held (rate-limited, window spent, overloaded, breaker open, credential
   refused) for the whole account or the model's family, no usage window at or
   above the threshold, a free concurrency slot, schedulable.
3. **Choice**: the first tier with a survivor wins; inside it the least loaded
   (in-flight per unit of weight), ties by round robin (picked least recently).

Only step 1 scans the pool, and only on a cache miss; a hit is O(tier size),
no I/O, no allocation beyond the reply.

When nothing survives, `explain` says why, as a `Refusal` safe to show a client:
`NO_MODEL` when no account the key may use serves the platform and model at all
(from the key's point of view the model does not exist), `NO_ACCOUNT` when such
accounts exist but none can take this request now (failed it already, disabled,
in error). Messages name no account and show at most `MODEL_SHOWN_CHARS` of the
requested model.
"""

import enum
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby

from switchboard_router.accounts import Account, State
from switchboard_router.pool import PoolSnapshot
from switchboard_router.state import Health, Hold, HoldKind
from switchboard_router.verdicts import family


@dataclass(frozen=True, slots=True)
class PickQuery:
    """What the caller asks for, already in plain Python types."""

    platforms: tuple[str, ...]
    model: str
    # Platforms whose accounts rank before the others' (empty: all alike).
    preferred: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    session_hint: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    account: Account
    upstream_model: str


class Unavailable(enum.Enum):
    """Why a pick found nothing."""

    NO_MODEL = "no_model"  # no account open to the key serves it (edge: 404)
    NO_ACCOUNT = "no_account"  # some do, but none can take this request now (edge: 503)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Unavailable
    message: str
    # When an account is expected to serve again (the earliest end of the holds in the way), Unix seconds.
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """One account as a pick sees it: "chosen", "available" (eligible, but another wins), or why it is skipped
    (excluded, unschedulable, held, probing, window, concurrency) or not eligible (platform, model, group, disabled,
    error)."""

    account: Account
    verdict: str
    detail: str
    tier: int  # 0 = best; -1 = not eligible
    in_flight: int
    upstream_model: str


@dataclass(frozen=True, slots=True)
class Live:
    """The shared state at pick time, read without I/O."""

    health: Health
    in_flight: Mapping[str, int]
    now: float
    # A usage window at or above this utilization keeps the account out (steer before the vendor's 429).
    window_threshold: float = 0.95
    # Accounts whose last slot another replica took since `in_flight` was read (the shared count said no).
    full: frozenset[str] = frozenset()
    # `blocked`'s answers, so a refusal's `explain` does not judge each account again.
    _verdicts: dict[tuple[str, str, bool], str | None] = field(default_factory=dict, init=False, compare=False,
                                                              repr=False)
    _holds: dict[tuple[str, str], Hold] = field(default_factory=dict, init=False, compare=False, repr=False)

    def hold_on(self, account: Account, model_family: str) -> Hold | None:
        """The hold in the way, as `blocked` found it (or looked up now)."""
        found = self._holds.get((account.id, model_family))
        return found if found is not None else self.health.hold_on(account.id, model_family)

    def troubled(self, model_family: str) -> frozenset[str]:
        """Accounts a hold or a nearly spent window may block for this family (see `Health.troubled`)."""
        return self.health.troubled(model_family, self.window_threshold)

    def blocked(self, account: Account, model_family: str, sticky: bool = False) -> str | None:
        """Why the account cannot take this request now ("held", "probing", "window", "concurrency",
        "unschedulable");
        a conversation already bound to it (`sticky`) stays on an unschedulable (draining) account."""
        key = (account.id, model_family, sticky)
        verdicts = self._verdicts
        if key in verdicts:
            return verdicts[key]
        why = verdicts[key] = self._judge(account, model_family, sticky)
        return why

    def _judge(self, account: Account, model_family: str, sticky: bool) -> str | None:
        if not account.schedulable and not sticky:
            return "unschedulable"
        hold = self.health.hold_on(account.id, model_family)
        if hold is not None:
            self._holds[(account.id, model_family)] = hold
            return "held"
        if account.id in self.health.half_open and self.in_flight.get(account.id, 0):
            return "probing"  # its breaker is half-open and one request is already finding out
        for key in ((account.id, ""), (account.id, model_family)) if model_family else ((account.id, ""),):
            for window in self.health.windows.get(key, ()):
                if window.utilization >= self.window_threshold and (
                        window.resets_at is None or window.resets_at > self.now):
                    return "window"
        if account.max_concurrency and (
                self.in_flight.get(account.id, 0) >= account.max_concurrency or account.id in self.full):
            return "concurrency"
        return None


MODEL_SHOWN_CHARS = 100

# A refusal's reason class, shown to the client: what keeps each candidate out, by hold kind or skip reason.
_REFUSAL_CLASS: dict[object, str] = {
    HoldKind.THROTTLED: "rate-limited", HoldKind.WINDOW: "rate-limited", HoldKind.OVERLOADED: "overloaded",
    HoldKind.BREAKER: "failing", HoldKind.ERROR: "in error", "probing": "failing",
    "window": "usage window", "concurrency": "concurrency limit", "unschedulable": "draining",
}
# A tier larger than this is chosen from by sampling: _SAMPLES candidates that can serve, drawn at random (at
# most _DRAWS draws), the best-ranked of them taken; with fewer usable among the draws, the whole tier is scanned.
_SAMPLE_ABOVE = 64
_SAMPLES = 4
_DRAWS = 16
_REFUSAL_TEXT = {
    "rate-limited": "is rate-limited{until}",
    "overloaded": "is overloaded upstream{until}",
    "failing": "is failing (circuit breaker open){until}",
    "in error": "is in error (its credential was refused)",
    "usage window": "has nearly spent its usage window",
    "concurrency limit": "is at its concurrency limit",
    "draining": "is draining (not schedulable)",
}


def shorten(text: str, limit: int = MODEL_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters plus "…" when longer (client input echoed in messages)."""
    return text if len(text) <= limit else text[:limit] + "…"


Tiers = tuple[tuple[Candidate, ...], ...]
Filter = Callable[[Account, PickQuery], bool]


def not_excluded(account: Account, query: PickQuery) -> bool:
    """Failover: an account that already failed this request is not offered again."""
    return account.id not in query.exclude


def statically_eligible(
    account: Account, platforms: Sequence[str], model: str, groups: Iterable[str]
) -> bool:
    return (
        account.state is State.READY
        and account.platform in platforms
        and account.serves(model)
        and account.usable_by(groups)
    )


def build_tiers(accounts: Sequence[Account], query: PickQuery) -> Tiers:
    """Step 1: eligible accounts grouped by (preferred platform, priority), best first, pool order within a tier."""
    eligible = [a for a in accounts if statically_eligible(a, query.platforms, query.model, query.groups)]
    preferred = query.preferred

    def rank(account: Account) -> tuple[bool, int]:
        return bool(preferred) and account.platform not in preferred, account.priority

    eligible.sort(key=rank)  # stable: pool order among equals
    return tuple(
        tuple(Candidate(a, a.upstream_model(query.model)) for a in tier)
        for _, tier in groupby(eligible, key=rank)
    )


class Selector:
    """Runs the pipeline; holds the candidate cache and the round-robin memory."""

    def __init__(self, filters: Sequence[Filter] = (), cache_size: int = 4096) -> None:
        """`filters`: more per-request conditions, after the failover exclusion (`not_excluded`)."""
        self._filters = tuple(filters)
        self._cache_size = cache_size
        self._cache: dict[tuple[tuple[str, ...], frozenset[str], str, tuple[str, ...]], Tiers] = {}
        self._cached_for: PoolSnapshot | None = None
        # Round robin: account id → sequence number of its last pick (0 = never).
        self._last_pick: dict[str, int] = {}
        self._sequence = 0
        self._random = random.Random()

    def tiers(self, snapshot: PoolSnapshot, query: PickQuery) -> Tiers:
        if snapshot is not self._cached_for:
            self._cache.clear()
            self._cached_for = snapshot
        key = (query.platforms, query.preferred, query.model, query.groups)
        tiers = self._cache.get(key)
        if tiers is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # models come from clients: bound the cache
            tiers = self._cache[key] = build_tiers(snapshot.accounts, query)
        return tiers

    def _passes(self, account: Account, query: PickQuery) -> bool:
        return not_excluded(account, query) and all(f(account, query) for f in self._filters)

    def pick(self, snapshot: PoolSnapshot, query: PickQuery, live: Live | None = None,
             bound: str | None = None, skips: dict[str, int] | None = None) -> Candidate | None:
        """The account for this request; `bound` is the account the conversation is bound to, which keeps it
        while it can serve (whatever its rank), so the vendor's prompt cache and signatures stay valid.
        `skips` gets, by reason, how many candidates were looked at and passed over."""
        filters = self._filters
        last_pick = self._last_pick
        model_family = family(query.model) if live is not None else ""
        in_flight = live.in_flight if live is not None else {}
        tiers = self.tiers(snapshot, query)
        if bound is not None:
            for tier in tiers:
                for candidate in tier:
                    account = candidate.account
                    if account.id == bound and self._passes(account, query) and (
                            live is None or live.blocked(account, model_family, sticky=True) is None):
                        self._sequence += 1
                        last_pick[account.id] = self._sequence
                        return candidate
        # Only accounts with a hold or a nearly spent window, a concurrency limit or a drain flag need
        # `Live.blocked`; the rest are ranked at once (a 1,000-account tier stays well under a millisecond).
        troubled = live.troubled(model_family) if live is not None else frozenset()
        exclude = query.exclude

        def blocked(account: Account) -> str | None:
            """Why this account cannot take the request now (None: it can)."""
            if account.id in exclude or (filters and not all(f(account, query) for f in filters)):
                return "excluded"
            if live is not None and (account.id in troubled or account.max_concurrency or not account.schedulable):
                return live.blocked(account, model_family)
            return None

        uniform = self._random.random  # int(uniform() * size): randrange's checks cost more than the rest
        for tier in tiers:
            best: Candidate | None = None
            if len(tier) > _SAMPLE_ABOVE:
                # Least-request sampling (Envoy's, and others'): the best of a few candidates drawn at random
                # spreads the load as a full scan does, at a cost that does not grow with the tier.
                size = len(tier)
                draws = (tier[int(uniform() * size)] for _ in range(_DRAWS))
                best = self._best(draws, blocked, in_flight, skips, enough=_SAMPLES)
            if best is None:
                best = self._best(tier, blocked, in_flight, skips)
            if best is not None:
                self._sequence += 1
                last_pick[best.account.id] = self._sequence
                return best
        return None

    def _best(self, candidates: Iterable[Candidate], blocked: Callable[[Account], str | None],
              in_flight: Mapping[str, int], skips: dict[str, int] | None, enough: int = 0) -> Candidate | None:
        """The best-ranked of `candidates` that can serve (least in flight per weight, then least recently
        picked). With `enough`: as soon as that many could serve, and None when fewer did."""
        last_pick = self._last_pick
        best: Candidate | None = None
        best_rank = (0.0, 0)
        usable = 0
        for candidate in candidates:
            account = candidate.account
            why = blocked(account)
            if why is not None:
                if skips is not None:
                    skips[why] = skips.get(why, 0) + 1
                continue
            rank = (in_flight.get(account.id, 0) / account.weight, last_pick.get(account.id, 0))
            if best is None or rank < best_rank:
                best, best_rank = candidate, rank
            usable += 1
            if usable == enough:
                return best
        return None if enough else best

    def explain(self, snapshot: PoolSnapshot, query: PickQuery, live: Live | None = None) -> Refusal:
        """Why `pick` found nothing, safe to show a client (no account names, no secrets): the reason class
        shared by the candidates still in play, and when one is expected back if a hold says so."""
        where = f"model {shorten(query.model)!r} on platform {shorten(', '.join(query.platforms))}"
        tiers = self.tiers(snapshot, query)
        if tiers:
            left = [c.account for tier in tiers for c in tier if not_excluded(c.account, query)]
            if not left or live is None:
                return Refusal(Unavailable.NO_ACCOUNT, f"every account serving {where} already failed this request")
            model_family = family(query.model)
            troubled = live.troubled(model_family)
            classes: set[str] = set()
            retry_at: float | None = None
            for account in left:
                why = (live.blocked(account, model_family)
                       if account.id in troubled or account.max_concurrency or not account.schedulable else None)
                hold = live.hold_on(account, model_family) if why == "held" else None
                classes.add(_REFUSAL_CLASS[hold.kind] if hold is not None else _REFUSAL_CLASS.get(why, "failed"))
                if hold is not None and hold.until is not None and (retry_at is None or hold.until < retry_at):
                    retry_at = hold.until
            if len(classes) == 1:
                (only,) = classes
                text = _REFUSAL_TEXT.get(only)
                if text is not None:
                    when = f" until {time.strftime('%H:%M:%S', time.gmtime(retry_at))} UTC" if retry_at else ""
                    return Refusal(Unavailable.NO_ACCOUNT, f"no available account: every account serving {where} "
                                   + text.format(until=when), retry_at)
            return Refusal(Unavailable.NO_ACCOUNT, f"no available account serving {where} right now "
                           f"({', '.join(sorted(classes))})", retry_at)
        serving = [a for a in snapshot.accounts if a.platform in query.platforms and a.serves(query.model)]
        if any(a.usable_by(query.groups) for a in serving):  # open to the key, but disabled or in error
            return Refusal(Unavailable.NO_ACCOUNT, f"every account serving {where} is disabled or in error")
        if serving:
            return Refusal(Unavailable.NO_MODEL, f"no account available to this key's groups serves {where}")
        return Refusal(Unavailable.NO_MODEL, f"no account serves {where}")

    def review(self, snapshot: PoolSnapshot, query: PickQuery, live: Live, bound: str | None = None) -> list[Review]:
        """Every account of the pool with what `pick` makes of it now, best tier first, nothing changed (no round
        robin step, no lease): the operator's answer to "why not that account?"."""
        model_family = family(query.model)
        reviews: list[Review] = []
        offered: set[str] = set()
        for rank, tier in enumerate(self.tiers(snapshot, query)):
            for candidate in tier:
                account = candidate.account
                offered.add(account.id)
                why = ("excluded" if not self._passes(account, query)
                       else live.blocked(account, model_family, sticky=account.id == bound))
                reviews.append(Review(account, why or "available", _detail(why, account, model_family, live),
                                      rank, live.in_flight.get(account.id, 0), candidate.upstream_model))
        for account in snapshot.accounts:
            if account.id not in offered:
                why = _ineligible(account, query)
                reviews.append(Review(account, why, (account.error or "") if why == "error" else "", -1,
                                      live.in_flight.get(account.id, 0), ""))
        # What `pick` would choose: the bound account if it can serve, else the least loaded of the best tier.
        usable = [r for r in reviews if r.verdict == "available"]
        choice = next((r for r in usable if r.account.id == bound), None)
        if choice is None and usable:
            best = min(r.tier for r in usable)
            choice = min((r for r in usable if r.tier == best),
                         key=lambda r: (r.in_flight / r.account.weight, self._last_pick.get(r.account.id, 0)))
        return [replace(r, verdict="chosen") if r is choice else r for r in reviews]


def _ineligible(account: Account, query: PickQuery) -> str:
    if account.platform not in query.platforms:
        return "platform"
    if not account.serves(query.model):
        return "model"
    if not account.usable_by(query.groups):
        return "group"
    return "error" if account.state is State.ERROR else "disabled"


def _detail(why: str | None, account: Account, model_family: str, live: Live) -> str:
    """The specifics behind a skip, for an operator (the vendor's words, never a credential)."""
    if why == "held":
        hold = live.health.hold_on(account.id, model_family)
        if hold is not None:
            until = "until cleared" if hold.until is None else f"for {max(0.0, hold.until - live.now):.0f} s"
            return f"{hold.kind.value} {until}: {hold.reason}"
    if why == "window":
        keys = ((account.id, ""), (account.id, model_family)) if model_family else ((account.id, ""),)
        spent = [w for key in keys for w in live.health.windows.get(key, ()) if w.utilization >= live.window_threshold]
        return ", ".join(f"{w.name} at {w.utilization:.0%}" for w in spent)
    if why == "concurrency":
        return f"{live.in_flight.get(account.id, 0)} of {account.max_concurrency} in flight"
    return ""
