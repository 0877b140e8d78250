"""What the router shares between its replicas, and the one interface every backend implements.

Everything here is keyed by account id ("claude-console/team-a") and, where it
says so, a model family ("opus", "sonnet"; "" means the whole account), because
vendors limit some accounts per model family and a throttled "opus" must not
take "sonnet" down with it.

Times are Unix seconds (`time.time()`), not monotonic ones: they cross process
and machine boundaries. Anything with a time in it ends by itself at that time;
nothing needs a sweeper to be right, only to free memory.

The selector reads `health()` and `in_flight()` on every pick, so both are plain
reads of a local copy: no I/O, already filtered of what has expired.
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# A failure streak is forgotten this long after its last failure: an idle
# account's two failures an hour apart say nothing about the account now.
FAILURE_STREAK_SECONDS = 600.0


class StateUnavailable(Exception):
    """The shared store cannot be reached; the local snapshot still answers reads."""


class HoldKind(enum.StrEnum):
    """Why an account (or one family of it) must not be picked."""

    THROTTLED = "throttled"  # a short 429 throttle
    WINDOW = "window"  # a usage window is exhausted until it resets
    OVERLOADED = "overloaded"  # 529: the vendor is overloaded
    BREAKER = "breaker"  # the circuit breaker is open
    ERROR = "error"  # the credential was refused; usually until cleared by hand
    # Not a hold: the breaker opened and no success has closed it since. Once the BREAKER hold ends the
    # account is half-open: one request at a time probes it, and its first failure opens the breaker again.
    TRIPPED = "tripped"


@dataclass(frozen=True, slots=True)
class Hold:
    """Do not pick until `until` (Unix seconds); None lasts until cleared.

    An account or family holds at most one hold of each kind: a new one replaces it.
    """

    kind: HoldKind
    until: float | None
    reason: str

    def live(self, now: float) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True, slots=True)
class Window:
    """One of the vendor's usage windows as last seen on a response ("5h", "7d", ...).

    Kept until `resets_at`, since after it the reading says nothing; None keeps it until replaced.
    """

    name: str
    utilization: float  # 0..1
    resets_at: float | None

    def live(self, now: float) -> bool:
        return self.resets_at is None or self.resets_at > now


@dataclass(frozen=True, slots=True)
class Health:
    """Live holds and windows by (account id, family), as of one moment."""

    holds: Mapping[tuple[str, str], tuple[Hold, ...]] = field(default_factory=dict)
    windows: Mapping[tuple[str, str], tuple[Window, ...]] = field(default_factory=dict)
    # Accounts whose breaker is half-open: its open period is over, no success has closed it yet.
    half_open: frozenset[str] = frozenset()
    _troubled: dict[tuple[str, float], frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def hold_on(self, account_id: str, family: str = "") -> Hold | None:
        """The hold that keeps `family` of the account from being picked, if any.

        A whole-account hold (family "") covers every family. Of several, the one
        ending last (None: never) is returned, as it is the one that decides.
        """
        held = self.holds.get((account_id, ""), ())
        if family:
            own = self.holds.get((account_id, family))
            if own:
                held = held + own if held else own
        if not held:
            return None
        if len(held) == 1:
            return held[0]
        return max(held, key=lambda hold: float("inf") if hold.until is None else hold.until)

    def troubled(self, family: str, window_threshold: float) -> frozenset[str]:
        """Accounts a hold or a nearly spent window may keep from serving `family`: the only ones a pick needs to
        look at closely. Computed once per view and family (the view is rebuilt whenever it changes)."""
        key = (family, window_threshold)
        cached = self._troubled.get(key)
        if cached is None:
            if len(self._troubled) > 256:
                self._troubled.clear()  # families come from clients' model names
            families = ("", family) if family else ("",)
            found = {account_id for account_id, held in self.holds if held in families}
            found.update(account_id for (account_id, held), windows in self.windows.items()
                         if held in families and any(w.utilization >= window_threshold for w in windows))
            found.update(self.half_open)
            cached = self._troubled[key] = frozenset(found)
        return cached


class RouterState(Protocol):
    """The router's shared state: in memory for one process, or in Redis for many replicas.

    Writes are async and reach every replica within 2 s; `health`, `in_flight`
    and `accounts_version` read a local copy. The Redis backend raises
    `StateUnavailable` from a write when Redis cannot be reached.
    """

    async def start(self) -> None:
        """Connects and loads the first snapshot (Redis); call before serving."""
        ...

    async def close(self) -> None: ...

    def refusing(self) -> bool:
        """True while picks must be refused: the shared store cannot be reached and the setting says refuse
        (`fallback.FallbackState`); no I/O."""
        ...

    # Holds and windows.
    async def put_hold(self, account_id: str, family: str, hold: Hold) -> None:
        """Sets the hold of `hold.kind` on the account's `family`, replacing one of the same kind."""
        ...

    async def clear_holds(self, account_id: str, kinds: frozenset[HoldKind] | None = None) -> None:
        """Removes the account's holds of these kinds (None: all) in every family."""
        ...

    async def put_window(self, account_id: str, family: str, window: Window) -> None:
        """Records a usage window, replacing the one of the same name."""
        ...

    def health(self) -> Health:
        """Live holds and windows; no I/O."""
        ...

    # Circuit breaker.
    async def record_failure(self, account_id: str, threshold: int, open_seconds: float) -> Hold | None:
        """Counts a consecutive failure; at `threshold` opens the breaker (a BREAKER hold for
        `open_seconds`, returned) and starts the count again. A half-open breaker's failure (its probe
        failed) opens it again at once."""
        ...

    async def record_success(self, account_id: str) -> None:
        """Ends the failure streak and closes an open breaker: the half-open probe got through."""
        ...

    # Sessions (stickiness).
    async def session(self, key: str, ttl: float) -> str | None:
        """The account bound to `key`, its binding renewed for `ttl` seconds (not renewed when `ttl` <= 0);
        None if unbound."""
        ...

    async def bind(self, key: str, account_id: str, ttl: float) -> None: ...

    async def unbind(self, key: str) -> None: ...

    # Concurrency slots.
    async def acquire(self, account_id: str, lease_id: str, limit: int, expires_at: float) -> bool:
        """Takes a slot until `expires_at` if fewer than `limit` leases are live (limit <= 0:
        unlimited, still counted). Atomic across replicas. Re-acquiring a held lease extends it."""
        ...

    async def extend(self, account_id: str, lease_id: str, expires_at: float) -> bool:
        """Moves a live lease's expiry; False if it has already expired or been released."""
        ...

    async def extend_all(self, leases: Sequence[tuple[str, str]], expires_at: float) -> None:
        """`extend` for many (account id, lease id) pairs at once (a holder's heartbeat): one round trip."""
        ...

    async def release(self, account_id: str, lease_id: str) -> None:
        """Returns a slot; idempotent."""
        ...

    def in_flight(self) -> Mapping[str, int]:
        """Live leases per account (accounts with none left out); no I/O."""
        ...

    # Accounts managed at run time.
    async def put_account(self, account_id: str, record: bytes) -> None: ...

    async def delete_account(self, account_id: str) -> None: ...

    async def accounts(self) -> dict[str, bytes]: ...

    def accounts_version(self) -> int:
        """Grows whenever any replica changes the accounts; no I/O."""
        ...

    async def wait_accounts_changed(self, since: int) -> int:
        """Waits until `accounts_version()` differs from `since`, and returns it."""
        ...

    # Credentials stored at run time (StoreCredential), shared like managed accounts: a change moves
    # `accounts_version`. Records are `credential_overlay` entries (JSON, with the credential: a secret).
    async def put_credential(self, account_id: str, record: bytes) -> bool:
        """Stores the account's credential record unless the one held for the same file credential expires
        later (it arrived late); atomic across replicas. False when ignored."""
        ...

    async def credentials(self) -> dict[str, bytes]: ...
