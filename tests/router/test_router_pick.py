"""Pick through the real RPC: which account wins, what it carries, and when none does."""

from collections import Counter

import grpc
import pytest

from switchboard.router.v1 import router_pb2

from .router_testing import Router, account

OK = router_pb2.PICK_STATUS_OK
NO_ACCOUNT = router_pb2.PICK_STATUS_NO_ACCOUNT
NO_MODEL = router_pb2.PICK_STATUS_NO_MODEL


async def picked_names(router: Router, n: int, **fields) -> list[str]:
    names = []
    for _ in range(n):
        reply = await router.pick(**fields)
        assert reply.status == OK, reply.message
        names.append(reply.account.name)
    return names


async def test_ok_reply_carries_the_full_account_and_a_fresh_lease(router: Router) -> None:
    router.set_accounts([account(
        "main", priority=7, model_mapping={"claude-sonnet-4": "claude-sonnet-4-20250514"},
        headers={"anthropic-beta": "b1"}, groups=["team-b", "team-a"], timeout_seconds=12.5,
    )])
    first = await router.pick(groups=["team-a"])
    second = await router.pick(groups=["team-a"])
    assert first.status == OK
    acct = first.account
    assert (acct.id, acct.name, acct.platform) == ("claude-console/main", "main", "claude-console")
    assert acct.base_url == "http://127.0.0.1:8090/main"  # no trailing slash
    assert acct.credential.api_key == "sk-test-main-secret"
    assert dict(acct.model_mapping) == {"claude-sonnet-4": "claude-sonnet-4-20250514"}
    assert dict(acct.headers) == {"anthropic-beta": "b1"}
    assert acct.priority == 7
    assert sorted(acct.groups) == ["team-a", "team-b"]
    assert acct.timeout.ToMilliseconds() == 12_500
    assert first.upstream_model == "claude-sonnet-4-20250514"
    assert first.lease_id and second.lease_id and first.lease_id != second.lease_id
    assert first.message == ""


async def test_account_without_timeout_leaves_it_to_the_edge(router: Router) -> None:
    router.set_accounts([account("plain")])
    reply = await router.pick()
    assert reply.status == OK
    assert not reply.account.HasField("timeout")


async def test_lowest_priority_number_wins(router: Router) -> None:
    router.set_accounts([account("low", priority=90), account("best", priority=5), account("mid")])
    assert set(await picked_names(router, 10)) == {"best"}


async def test_round_robin_spreads_evenly_among_equal_priority(router: Router) -> None:
    router.set_accounts([account("a", priority=10), account("b", priority=10), account("c", priority=10),
                         account("worse", priority=11)])
    names = await picked_names(router, 30)
    assert Counter(names) == {"a": 10, "b": 10, "c": 10}
    # Strict rotation: every window of three consecutive picks holds all three accounts.
    assert all(len(set(names[i:i + 3])) == 3 for i in range(len(names) - 2))


async def test_model_globs_are_case_sensitive_patterns(router: Router) -> None:
    router.set_accounts([account("claude", models=["claude-*"]), account("gpt", models=["gpt-4?", "o[13]"])])
    assert await picked_names(router, 1, model="claude-opus-5-5") == ["claude"]
    assert await picked_names(router, 1, model="gpt-4o") == ["gpt"]
    assert await picked_names(router, 1, model="o3") == ["gpt"]
    for model in ("Claude-opus", "gpt-4.1", "o2", "gemini-2.5-flash"):
        reply = await router.pick(model=model)
        assert reply.status == NO_MODEL, model


async def test_platforms_filter_and_priority_ranks_across_them(router: Router) -> None:
    router.set_accounts([
        account("official", platform="claude-official", priority=50),
        account("console", platform="claude-console", priority=10),
        account("openai", platform="openai", priority=1),
    ])
    assert await picked_names(router, 3, platforms=("claude-official",)) == ["official"] * 3
    # The list is a filter, not a ranking: the better priority wins whichever platform comes first.
    names = await picked_names(router, 3, platforms=("claude-official", "claude-console"))
    assert names == ["console"] * 3
    reply = await router.pick(platforms=("bedrock",))
    assert reply.status == NO_MODEL


async def test_preferred_platforms_rank_before_translated_ones_whatever_their_priority(router: Router) -> None:
    router.set_accounts([
        account("gpt-native", platform="openai", priority=50),
        account("gpt-responses", platform="openai-responses", priority=1),
        account("claude", platform="claude-console", priority=1),
    ])
    both = ("openai", "openai-responses")
    # An OpenAI chat client: the native openai account first, though its priority number is worse.
    assert await picked_names(router, 3, platforms=both, preferred=1) == ["gpt-native"] * 3
    # Without preference the priority decides, as before.
    assert await picked_names(router, 3, platforms=both) == ["gpt-responses"] * 3
    # The translated platform serves when no preferred account can.
    native_id = "openai/gpt-native"
    assert await picked_names(router, 2, platforms=both, preferred=1,
                              exclude_account_ids=[native_id]) == ["gpt-responses"] * 2
    # `preferred` counts from the front of the list: all listed ranks alike past its end.
    assert await picked_names(router, 2, platforms=("openai-responses", "openai"), preferred=2) == \
        ["gpt-responses"] * 2


async def test_excluded_accounts_are_skipped_then_the_next_tier_serves(router: Router) -> None:
    router.set_accounts([account("a", priority=1), account("b", priority=1), account("backup", priority=2)])
    ids = {n: f"claude-console/{n}" for n in ("a", "b", "backup")}
    assert await picked_names(router, 4, exclude_account_ids=[ids["a"]]) == ["b"] * 4
    assert await picked_names(router, 2, exclude_account_ids=[ids["a"], ids["b"]]) == ["backup"] * 2
    reply = await router.pick(exclude_account_ids=list(ids.values()))
    assert reply.status == NO_ACCOUNT
    assert "already failed this request" in reply.message


async def test_groups_limit_who_may_use_an_account(router: Router) -> None:
    router.set_accounts([account("shared", priority=50), account("team-a-only", priority=1, groups=["team-a"])])
    assert await picked_names(router, 2) == ["shared"] * 2                      # key without groups
    assert await picked_names(router, 2, groups=["team-a"]) == ["team-a-only"] * 2
    assert await picked_names(router, 2, groups=["team-b"]) == ["shared"] * 2  # default pool is open to all
    assert await picked_names(router, 1, groups=["x", "team-a"]) == ["team-a-only"]

    router.set_accounts([account("team-a-only", groups=["team-a"])])
    reply = await router.pick(groups=["team-b"])
    assert reply.status == NO_MODEL  # from this key's point of view nobody serves it
    assert "this key's groups" in reply.message


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param("claude-sonnet-4", "exact-target", id="exact-beats-earlier-globs"),
        pytest.param("claude-sonnet-5", "first-glob", id="globs-in-file-order"),
        pytest.param("claude-haiku-3", "first-glob", id="broad-glob"),
        pytest.param("claude-sonnet-4-x", "first-glob", id="exact-is-not-prefix"),
        pytest.param("gpt-4o", "gpt-4o", id="unmapped-passes-through"),
    ],
)
async def test_model_mapping_precedence(router: Router, requested: str, expected: str) -> None:
    mapping = {"claude-*": "first-glob", "claude-sonnet-*": "second-glob", "claude-sonnet-4": "exact-target"}
    router.set_accounts([account("m", model_mapping=mapping)])
    reply = await router.pick(model=requested)
    assert reply.upstream_model == expected


async def test_later_glob_wins_when_it_comes_first_in_the_file(router: Router) -> None:
    router.set_accounts([account("m", model_mapping={"claude-sonnet-*": "sonnet", "claude-*": "any"})])
    assert (await router.pick(model="claude-sonnet-5")).upstream_model == "sonnet"
    assert (await router.pick(model="claude-opus-5")).upstream_model == "any"


async def test_disabled_or_broken_accounts_are_unavailable_not_missing(router: Router) -> None:
    router.set_accounts([
        account("off", enabled=False),
        {**account("broken"), "api_key": None, "api_key_env": "NOT_SET_ANYWHERE"},
    ])
    reply = await router.pick(model="claude-opus-4", platforms=("claude-console", "claude-ccr"))
    assert reply.status == NO_ACCOUNT
    assert reply.message == (
        "every account serving model 'claude-opus-4' on platform claude-console, claude-ccr is disabled or in error"
    )
    assert not reply.HasField("account")
    assert reply.lease_id == "" and reply.upstream_model == ""
    assert "off" not in reply.message and "broken" not in reply.message


@pytest.mark.parametrize(
    ("accounts", "groups", "expected"),
    [
        pytest.param([account("gpt", models=["gpt-*"])], [], NO_MODEL, id="pattern-misses"),
        pytest.param([account("other", platform="openai")], [], NO_MODEL, id="other-platform"),
        pytest.param([account("a", groups=["team-a"])], ["team-b"], NO_MODEL, id="other-groups-only"),
        pytest.param([account("a", groups=["team-a"], enabled=False)], ["team-b"], NO_MODEL,
                     id="disabled-for-other-groups"),
        pytest.param([account("a", enabled=False), account("gpt", models=["gpt-*"])], [], NO_ACCOUNT,
                     id="disabled-but-would-serve"),
        pytest.param([account("a", groups=["team-a"], enabled=False)], ["team-a"], NO_ACCOUNT,
                     id="disabled-in-key-group"),
    ],
)
async def test_no_model_only_when_no_account_for_the_key_serves_it(
    router: Router, accounts: list[dict], groups: list[str], expected: int
) -> None:
    router.set_accounts(accounts)
    reply = await router.pick(model="claude-opus-4", groups=groups)
    assert reply.status == expected, reply.message


async def test_no_model_message_names_no_account(router: Router) -> None:
    router.set_accounts([account("secret-name", models=["gpt-*"])])
    reply = await router.pick(model="claude-opus-4")
    assert reply.status == NO_MODEL
    assert reply.message == "no account serves model 'claude-opus-4' on platform claude-console"


async def test_failover_exhaustion_is_no_account_not_no_model(router: Router) -> None:
    router.set_accounts([account("a")])
    reply = await router.pick(exclude_account_ids=["claude-console/a"])
    assert reply.status == NO_ACCOUNT
    assert "already failed this request" in reply.message


@pytest.mark.parametrize(("served", "excluded", "expected"), [
    pytest.param("z*", [], NO_MODEL, id="no-model"),
    pytest.param("x*", ["claude-console/a"], NO_ACCOUNT, id="no-account"),
])
async def test_refusal_message_truncates_a_long_model(
    router: Router, served: str, excluded: list[str], expected: int
) -> None:
    router.set_accounts([account("a", models=[served])])
    model = "x" + "y" * 10_000
    reply = await router.pick(model=model, exclude_account_ids=excluded)
    assert reply.status == expected
    assert f"'x{'y' * 99}…'" in reply.message
    assert "y" * 101 not in reply.message
    assert len(reply.message) < 250


@pytest.mark.parametrize(
    "request_fields",
    [pytest.param({"platforms": (), "model": "m"}, id="no-platforms"),
     pytest.param({"platforms": ("openai",), "model": ""}, id="no-model")],
)
async def test_contract_violations_are_invalid_argument(router: Router, request_fields: dict) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Pick(router_pb2.PickRequest(**request_fields), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_large_tier_is_sampled_yet_spreads_over_every_account_and_keeps_the_tiers(router: Router) -> None:
    """Past 64 accounts in a tier, a few drawn at random are ranked instead of all (the cost stays flat); the
    load still reaches every account, a better tier still wins, and excluded accounts are never chosen."""
    router.set_accounts([account(f"big-{i:03d}", priority=10) for i in range(100)] + [account("worse", priority=11)])
    names = await picked_names(router, 1000)
    counts = Counter(names)
    assert "worse" not in counts
    assert len(counts) == 100  # every account of the tier served
    assert max(counts.values()) <= 30  # no account singled out (10 each on average)
    excluded = [f"claude-console/big-{i:03d}" for i in range(95)]
    assert set(await picked_names(router, 40, exclude_account_ids=excluded)) <= {f"big-{i:03d}" for i in range(95, 100)}
    everyone = [*excluded, *(f"claude-console/big-{i:03d}" for i in range(95, 100))]
    assert set(await picked_names(router, 5, exclude_account_ids=everyone)) == {"worse"}
