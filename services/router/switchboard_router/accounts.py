"""An upstream account as the router sees it, and the two questions only it answers.

Which models does this account serve (glob patterns, `fnmatchcase`), and what
is a requested model called upstream (exact mapping first, then glob keys in
their given order, else unchanged)? Sources build `Account`s; nothing else
decides these rules.
"""

import enum
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_PRIORITY = 50
DEFAULT_WEIGHT = 1

_GLOB_CHARS = frozenset("*?[")


class State(enum.Enum):
    """Lifecycle state of an account; `value` is the metric label."""

    READY = "ready"
    COOLING = "cooling"
    ERROR = "error"
    DISABLED = "disabled"


Matcher = Callable[[str], object]


def _matcher(pattern: str) -> Matcher:
    return re.compile(fnmatch.translate(pattern)).match


def is_glob(pattern: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(pattern)


@dataclass(frozen=True, eq=False)
class Account:
    """One upstream account. `error` is set when it cannot be used (a missing secret, a failed
    credential refresh); the account is then in the error state and never picked."""

    name: str
    platform: str
    base_url: str
    api_key: str = field(default="", repr=False)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    priority: int = DEFAULT_PRIORITY
    # Share of new work among accounts of equal priority and load (weighted choice).
    weight: int = DEFAULT_WEIGHT
    # Requests it may serve at once (a slot per request, leased with expiry); 0: no limit.
    max_concurrency: int = 0
    enabled: bool = True
    # False: takes no new conversations, but those already bound to it stay (an operator draining it).
    schedulable: bool = True
    models: Sequence[str] = ("*",)
    model_mapping: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    groups: frozenset[str] = frozenset()
    # Upstream read timeout and connect timeout for this account; 0 leaves each to the edge's setting.
    timeout_seconds: float = 0.0
    connect_timeout_seconds: float = 0.0
    # Outbound proxy URL ("" direct); it may hold a password, so it is kept out of reprs and listings.
    proxy_url: str = field(default="", repr=False)
    # Per-platform settings (see platform_fields): bedrock region; azure-openai deployments
    # (model or glob -> deployment), api_version, path_style; openai organization, project.
    region: str = ""
    deployments: Mapping[str, str] = field(default_factory=dict)
    api_version: str = ""
    path_style: str = ""
    organization: str = ""
    project: str = ""
    error: str | None = None
    # Stable id "<platform>/<name>"; derived, stored because every pick reads it.
    id: str = field(init=False)
    _serves: tuple[Matcher, ...] = field(init=False, repr=False)
    _mapping_globs: tuple[tuple[Matcher, str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.platform}/{self.name}")
        object.__setattr__(self, "_serves", tuple(_matcher(p) for p in self.models))
        globs = tuple((_matcher(k), v) for k, v in self.model_mapping.items() if is_glob(k))
        object.__setattr__(self, "_mapping_globs", globs)

    @property
    def state(self) -> State:
        if not self.enabled:
            return State.DISABLED
        if self.error is not None:
            return State.ERROR
        return State.READY

    def serves(self, model: str) -> bool:
        """True when any of the account's model patterns matches `model`."""
        return any(match(model) for match in self._serves)

    def upstream_model(self, model: str) -> str:
        """The name to send upstream: exact mapping, then glob keys in order, else `model`."""
        exact = self.model_mapping.get(model)
        if exact is not None:
            return exact
        for match, target in self._mapping_globs:
            if match(model):
                return target
        return model

    def usable_by(self, key_groups: Iterable[str]) -> bool:
        """Group rule: an account without groups is the default pool, open to every key;
        an account with groups serves only keys sharing at least one of them."""
        return not self.groups or not self.groups.isdisjoint(key_groups)
