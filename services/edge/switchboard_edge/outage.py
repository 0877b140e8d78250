"""What the edge answers from while auth or the router cannot be reached: their last answers, for a bounded time.

- Auth down: a key's last ALLOW for the same platforms and model, given within `grace` seconds, admits the
  request. Its requests per minute are counted here, per edge (a key at its limit gets 429); its other limits
  cannot be counted meanwhile (no concurrency admission, no x-ratelimit-* headers). A key never allowed
  within the grace is refused with 503, as before.
- Router down: an account the router chose for the same platforms and model within `grace` seconds serves the
  request, without a lease (there is nobody to hold one with): the account this conversation was last
  given when it is among them, else round robin, the ones already tried excluded.

Each answer given this way counts in `switchboard_edge_degraded_answers_total{service}`; the first of an
outage logs a warning, the first real answer after it an info line. A `grace` of 0 turns it off.
"""

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, Generic, TypeVar

from switchboard.auth.v1 import auth_pb2
from switchboard.router.v1 import router_pb2
from switchboard_edge import metrics
from switchboard_edge.errors import RateLimited

log = logging.getLogger(__name__)

_SIZE = 10_000
_MINUTE = 60.0
_RPM = "requests_per_minute"  # auth's name of the limit (LimitStatus.name)
Answer = TypeVar("Answer")
Value = TypeVar("Value")


def _bounded_put(table: dict[Any, Value], key: Hashable, value: Value) -> None:
    """table[key] = value, the oldest entry dropped first when the table is full (keys come from clients)."""
    if len(table) >= _SIZE and key not in table:
        table.pop(next(iter(table)))
    table[key] = value


class _Outage(Generic[Answer]):
    """Remembered answers by key, each with when it was given; whether an outage is being ridden out."""

    def __init__(self, service: str, grace: float, clock: Callable[[], float]) -> None:
        self._service = service
        self._grace = grace
        self._clock = clock
        self._answers: dict[Hashable, tuple[float, Answer]] = {}
        self._riding = False
        self._counter = metrics.DEGRADED_ANSWERS.labels(service)

    def _put(self, key: Hashable, answer: Answer) -> None:
        if self._grace <= 0:
            return
        if self._riding:
            self._riding = False
            log.info("%s answering again: its answers are used, not the last ones remembered", self._service)
        _bounded_put(self._answers, key, (self._clock(), answer))

    def _get(self, key: Hashable) -> Answer | None:
        found = self._answers.get(key)
        if found is None or self._clock() - found[0] > self._grace:
            return None
        return found[1]

    def _used(self) -> None:
        self._counter.inc()
        if not self._riding:
            self._riding = True
            log.warning("%s unreachable: answering from its last answers (for up to %.0f s after each)",
                        self._service, self._grace)


class LastDecisions(_Outage[auth_pb2.AuthorizeResponse]):
    """Auth's last ALLOW per (key digest, platforms, model), and when each key was last allowed at all."""

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("auth", grace, clock)
        self._allowed: dict[bytes, float] = {}
        # Key digest -> when its requests admitted from a last ALLOW were, within the last minute.
        self._admitted: dict[bytes, deque[float]] = {}

    def remember(self, digest: bytes, platforms: tuple[str, ...], model: str,
                 answer: auth_pb2.AuthorizeResponse) -> None:
        if answer.decision == auth_pb2.DECISION_ALLOW:
            self._put((digest, platforms, model), answer)
            self.seen(digest)

    def seen(self, digest: bytes) -> None:
        """Auth found this key valid just now."""
        if self._grace > 0:
            _bounded_put(self._allowed, digest, self._clock())

    def admits_key(self, digest: bytes) -> bool:
        """Whether the key was found valid within the grace (its body may be read while auth is down)."""
        since = self._allowed.get(digest)
        if since is None or self._clock() - since > self._grace:
            return False
        self._used()
        return True

    def forget(self, key_ids: Collection[str]) -> None:
        """These keys changed (disabled, rotated, deleted): their last ALLOWs are void."""
        for key in [key for key, (_, answer) in self._answers.items() if answer.identity.key_id in key_ids]:
            self._allowed.pop(key[0], None)  # type: ignore[index]
            del self._answers[key]

    def recall(self, digest: bytes, platforms: tuple[str, ...], model: str) -> auth_pb2.AuthorizeResponse | None:
        """The remembered ALLOW, without what only a live auth can grant (an admission, limit statuses)."""
        found = self._get((digest, platforms, model))
        if found is None:
            return None
        self._count_request(digest, found)
        self._used()
        answer = auth_pb2.AuthorizeResponse()
        answer.CopyFrom(found)
        for field in ("admission_id", "limits", "reuse_for", "call_id"):
            answer.ClearField(field)
        return answer


    def _count_request(self, digest: bytes, answer: auth_pb2.AuthorizeResponse) -> None:
        """Raises RateLimited when the key's requests per minute, as auth last stated it, are spent here."""
        per_minute = next((status.limit for status in answer.limits if status.name == _RPM), 0)
        if per_minute <= 0:
            return
        now = self._clock()
        times = self._admitted.get(digest)
        if times is None:
            times = deque()
            _bounded_put(self._admitted, digest, times)
        while times and now - times[0] >= _MINUTE:
            times.popleft()
        if len(times) >= per_minute:
            raise RateLimited(f"This key's limit of {per_minute} requests per minute is reached; try again later.",
                              retry_after=max(1.0, _MINUTE - (now - times[0])))
        times.append(now)


class LastPicks(_Outage[list[router_pb2.PickResponse]]):
    """The accounts the router chose per (platforms, model), most recent first, a few of each."""

    _PER_QUERY = 8

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("router", grace, clock)
        self._turn = itertools.count()
        # Session hint -> the account id the router last gave that conversation.
        self._sessions: dict[str, str] = {}

    def remember(self, platforms: Sequence[str], model: str, pick: router_pb2.PickResponse,
                 session: str = "") -> None:
        if pick.status != router_pb2.PICK_STATUS_OK:
            return
        if session and self._grace > 0:
            _bounded_put(self._sessions, session, pick.account.id)
        key = (tuple(platforms), model)
        found = self._answers.get(key)
        if found is not None and found[1][0].account.id == pick.account.id:  # the usual case: the same account
            found[1][0] = pick
            self._put(key, found[1])
            return
        picks = [] if found is None else [p for p in found[1] if p.account.id != pick.account.id]
        self._put(key, [pick, *picks][: self._PER_QUERY])

    def recall(self, platforms: Sequence[str], model: str, exclude: Sequence[str],
               session: str = "") -> router_pb2.PickResponse | None:
        """One of the remembered accounts not in `exclude` (the conversation's own first), without a lease."""
        picks = self._get((tuple(platforms), model))
        usable = [pick for pick in picks or () if pick.account.id not in exclude]
        if not usable:
            return None
        self._used()
        bound = self._sessions.get(session) if session else None
        chosen = next((pick for pick in usable if pick.account.id == bound), None)
        answer = router_pb2.PickResponse()
        answer.CopyFrom(chosen or usable[next(self._turn) % len(usable)])
        answer.ClearField("lease_id")
        answer.ClearField("call_id")
        return answer
