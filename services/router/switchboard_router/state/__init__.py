"""The router's shared state (holds, windows, breaker, sessions, slots, managed accounts) behind one
interface, `RouterState`, with an in-memory backend (`MemoryState`) and a Redis one (`RedisState`), the latter
served through `FallbackState` (what happens while Redis cannot be reached)."""

from switchboard_router.state.base import Health, Hold, HoldKind, RouterState, StateUnavailable, Window
from switchboard_router.state.fallback import FallbackState
from switchboard_router.state.memory import MemoryState
from switchboard_router.state.redis_state import RedisState

__all__ = ["FallbackState", "Health", "Hold", "HoldKind", "MemoryState", "RedisState", "RouterState",
           "StateUnavailable", "Window"]
