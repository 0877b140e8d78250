"""The lease counts `StateTables` keeps up to date agree with a plain recount, whatever the order of events."""

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.state.memory import StateTables

ACCOUNTS = ("a", "b", "c")
LEASES = tuple(f"lease-{i}" for i in range(6))

events = st.lists(st.one_of(
    st.tuples(st.just("acquire"), st.sampled_from(ACCOUNTS), st.sampled_from(LEASES), st.integers(0, 3),
              st.floats(0.1, 20)),
    st.tuples(st.just("extend"), st.sampled_from(ACCOUNTS), st.sampled_from(LEASES), st.just(0), st.floats(0.1, 20)),
    st.tuples(st.just("release"), st.sampled_from(ACCOUNTS), st.sampled_from(LEASES), st.just(0), st.just(0.0)),
    st.tuples(st.just("wait"), st.just(""), st.just(""), st.just(0), st.floats(0, 10)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_counts_match_a_recount(steps: list[tuple[str, str, str, int, float]]) -> None:
    tables = StateTables()
    model: dict[str, dict[str, float]] = {}  # account → lease → expires at
    now = 100.0
    for op, account, lease, limit, seconds in steps:
        live = {a: {lid: t for lid, t in held.items() if t > now} for a, held in model.items()}
        if op == "wait":
            now += seconds
        elif op == "acquire":
            held = live.get(account, {})
            allowed = lease in held or not (0 < limit <= len(held))
            assert tables.acquire(account, lease, limit, now + seconds, now) == allowed
            if allowed:
                live.setdefault(account, {})[lease] = now + seconds
        elif op == "extend":
            known = lease in live.get(account, {})
            assert tables.extend(account, lease, now + seconds, now) == known
            if known:
                live[account][lease] = now + seconds
        else:
            tables.release(account, lease)
            live.get(account, {}).pop(lease, None)
        model = live
        expected = {a: n for a, held in model.items() if (n := sum(1 for t in held.values() if t > now))}
        assert dict(tables.in_flight(now)) == expected
