"""One behavioural suite for both store backends (store.KeyStore and store.Ledger on SQLite and PostgreSQL):
keys by hash, name or key_id, unique names and hashes, rotation's previous hash, update, last use that never
moves back, key details, and the idempotent ledger. Each test runs once per backend (`[sqlite]`,
`[postgres]`)."""

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from switchboard_auth.errors import InvalidKeySpec, KeyNameTaken, StoreError
from switchboard_auth.keys import (
    KEY_ID_PATTERN,
    KeyHasher,
    KeyLimits,
    KeyPolicy,
    KeyState,
    create_key,
    rotate_key,
)
from switchboard_auth.store import Ledger
from switchboard_auth.usage import Dimension, UsageEntry, UsageSummary

from .store_backends import (
    Backend,
    backend_fixture,  # noqa: F401
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def entry(request_id: str, key_id: str = "key_0123456789ab", **fields: object) -> UsageEntry:
    base: dict[str, object] = {
        "request_id": request_id, "key_id": key_id, "platform": "openai", "model": "gpt-4o",
        "started_at": T0, "recorded_at": T0, "input_tokens": 10, "output_tokens": 5,
    }
    return UsageEntry(**(base | fields))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ schema


async def test_the_schema_is_applied_once_however_often_the_stores_open(backend: Backend) -> None:
    first = await backend.stores()
    assert first.migrated == tuple(range(1, first.schema_version + 1))
    for _ in range(2):
        again = await backend.stores()
        assert again.migrated == ()
        assert again.schema_version == first.schema_version


async def test_closed_stores_raise_store_errors(backend: Backend) -> None:
    stores = await backend.stores()
    await stores.close()
    with pytest.raises(StoreError):
        await stores.keys.get_by_hash("x")
    with pytest.raises(StoreError):
        await stores.ledger.append([entry("r1")])


# -------------------------------------------------------------------------------------------------- keys


async def test_created_key_verifies_by_hash_and_record_carries_the_policy(backend: Backend) -> None:
    store = (await backend.stores()).keys
    expires = datetime.now(UTC) + timedelta(days=30)
    plaintext, record = await create_key(
        store, "team-a", pepper="p", platforms=["openai", "gemini"], models=["gpt-*"], groups=["g1"],
        expires_at=expires,
    )
    assert record.key_hash == KeyHasher("p")(plaintext)
    assert record.state is KeyState.ACTIVE
    assert KEY_ID_PATTERN.fullmatch(record.key_id) and record.key_id not in plaintext
    assert await store.get_by_hash(KeyHasher("p")(plaintext)) == record
    assert await store.get_by_hash(KeyHasher("wrong pepper")(plaintext)) is None
    assert record.allowed_platforms == ("openai", "gemini")
    assert record.allowed_models == ("gpt-*",)
    assert record.groups == ("g1",)
    assert record.expires_at == expires


async def test_keys_are_addressed_by_name_or_key_id(backend: Backend) -> None:
    store = (await backend.stores()).keys
    _, record = await create_key(store, "alpha")
    await create_key(store, "beta")
    assert await store.get("alpha") == record
    assert await store.get(record.key_id) == record
    assert await store.get("gamma") is None
    disabled = await store.set_state(record.key_id, KeyState.DISABLED)
    assert disabled is not None and disabled.state is KeyState.DISABLED
    assert (await store.get("alpha")).state is KeyState.DISABLED  # type: ignore[union-attr]
    assert await store.set_state("gamma", KeyState.ACTIVE) is None
    assert [r.name for r in await store.list_all()] == ["alpha", "beta"]
    assert await store.delete("alpha") == disabled
    assert await store.delete("alpha") is None
    assert [r.name for r in await store.list_all()] == ["beta"]


async def test_keys_are_listed_by_name_bytewise(backend: Backend) -> None:
    store = (await backend.stores()).keys
    for name in ("b-key", "a-key", "B-key", "_key", "a.key"):
        await create_key(store, name if name[0] != "_" else "0" + name)
    assert [r.name for r in await store.list_all()] == ["0_key", "B-key", "a-key", "a.key", "b-key"]


async def test_names_are_unique_unless_replacing(backend: Backend) -> None:
    store = (await backend.stores()).keys
    first, first_record = await create_key(store, "demo")
    with pytest.raises(KeyNameTaken):
        await create_key(store, "demo")
    second, second_record = await create_key(store, "demo", replace=True)
    assert await store.get_by_hash(first_record.key_hash) is None
    assert await store.get("demo") == second_record
    assert second != first
    assert [r.key_id for r in await store.list_all()] == [second_record.key_id]


async def test_hashes_are_unique(backend: Backend) -> None:
    store = (await backend.stores()).keys
    _, record = await create_key(store, "original")
    twin = dataclasses.replace(record, key_id="key_0123456789ab", name="twin")
    with pytest.raises(StoreError) as refused:
        await store.create(twin)
    assert not isinstance(refused.value, KeyNameTaken)
    assert [r.name for r in await store.list_all()] == ["original"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"name": "bad name"}, "invalid key name", id="space-in-name"),
        pytest.param({"name": ""}, "invalid key name", id="empty-name"),
        pytest.param({"name": "key_0123456789ab"}, "looks like a key_id", id="name-like-key-id"),
        pytest.param({"platforms": ["openai", "nope"]}, "unknown platform", id="unknown-platform"),
        pytest.param({"models": [""]}, "model patterns", id="empty-model-glob"),
        pytest.param({"groups": [" g "]}, "group names", id="padded-group"),
        pytest.param({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "in the past", id="past-expiry"),
        pytest.param({"expires_at": datetime(2099, 1, 1)}, "timezone", id="naive-expiry"),
        pytest.param({"policy": KeyPolicy(allowed_ips=("300.1.1.1",))}, "invalid address", id="bad-cidr"),
        pytest.param({"policy": KeyPolicy(allowed_clients=("cursor",))}, "unknown client", id="unknown-client"),
        pytest.param({"policy": KeyPolicy(denied_platforms=("nope",))}, "unknown platform", id="unknown-denied"),
        pytest.param({"limits": KeyLimits(concurrency=0)}, "positive whole number", id="zero-limit"),
    ],
)
async def test_invalid_specs_are_refused_before_storing(backend: Backend, options: dict, message: str) -> None:
    store = (await backend.stores()).keys
    options = dict(options)  # the table is shared by both backends' runs
    name = options.pop("name", "ok")
    with pytest.raises(InvalidKeySpec, match=message):
        await create_key(store, name, **options)
    assert await store.list_all() == []


async def test_details_policy_and_limits_survive_the_store(backend: Backend) -> None:
    store = (await backend.stores()).keys
    limits = KeyLimits(requests_per_minute=60, tokens_per_day=1_000_000, daily_budget_micro_usd=12_500_000)
    policy = KeyPolicy(denied_platforms=("azure-openai",), denied_models=("o1*",), allowed_clients=("claude-code",),
                       allowed_ips=("10.0.0.0/8", "2001:db8::/32"))
    plaintext, created = await create_key(store, "detailed", owner="team-a", description="CI runner — ünïcode",
                                          tags=["ci", "prod"], policy=policy, limits=limits)
    for found in (await store.get("detailed"), await store.get_by_hash(created.key_hash), *await store.list_all()):
        assert found == created
    assert created.key_prefix == plaintext[:12]
    assert (created.owner, created.tags, created.policy, created.limits) == ("team-a", ("ci", "prod"), policy, limits)


async def test_timestamps_come_back_as_the_same_aware_utc_instants(backend: Backend) -> None:
    store = (await backend.stores()).keys
    expires = datetime(2031, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)
    _, record = await create_key(store, "timed", expires_at=expires)
    found = await store.get("timed")
    assert found is not None
    assert found.expires_at == expires and found.expires_at.utcoffset() == timedelta(0)
    assert found.created_at == record.created_at and found.created_at.utcoffset() == timedelta(0)


async def test_touch_only_moves_last_used_forward(backend: Backend) -> None:
    store = (await backend.stores()).keys
    _, record = await create_key(store, "alpha")
    await store.touch({})
    assert (await store.get("alpha")).last_used_at is None  # type: ignore[union-attr]
    await store.touch({record.key_id: T0})
    await store.touch({record.key_id: T0 - timedelta(hours=1), "key_ffffffffffff": T0})
    assert (await store.get("alpha")).last_used_at == T0  # type: ignore[union-attr]
    await store.touch({record.key_id: T0 + timedelta(microseconds=1)})
    assert (await store.get("alpha")).last_used_at == T0 + timedelta(microseconds=1)  # type: ignore[union-attr]


async def test_update_replaces_all_but_identity_creation_and_last_use(backend: Backend) -> None:
    store = (await backend.stores()).keys
    _, record = await create_key(store, "mutable", groups=["g1"])
    await store.touch({record.key_id: T0})
    changed = dataclasses.replace(
        record, name="renamed", created_at=T0 - timedelta(days=9), last_used_at=None, key_hash="f" * 64,
        state=KeyState.DISABLED, allowed_models=("claude-*",), groups=(), owner="someone",
        limits=KeyLimits(concurrency=2), expires_at=T0 + timedelta(days=400),
    )
    stored = await store.update(changed)
    expected = dataclasses.replace(changed, name="mutable", created_at=record.created_at, last_used_at=T0)
    assert stored == expected
    assert await store.get(record.key_id) == expected
    assert await store.get_by_hash("f" * 64) == expected
    assert await store.get_by_hash(record.key_hash) is None
    ghost = dataclasses.replace(record, key_id="key_0123456789ab", key_hash="e" * 64)
    assert await store.update(ghost) is None


async def test_rotation_keeps_the_key_and_finds_it_by_the_previous_hash_during_its_grace(backend: Backend) -> None:
    store = (await backend.stores()).keys
    old, record = await create_key(store, "rotating", groups=["g1"])
    new, rotated = await rotate_key(store, "rotating", grace=timedelta(hours=1))
    assert (rotated.key_id, rotated.name, rotated.groups, rotated.created_at) == (
        record.key_id, record.name, record.groups, record.created_at)
    assert await store.get_by_hash(KeyHasher()(new)) == rotated
    by_old = await store.get_by_hash(KeyHasher()(old))
    assert by_old == rotated and by_old.previous_key_hash == record.key_hash  # type: ignore[union-attr]
    assert by_old.previous_valid_until is not None  # type: ignore[union-attr]

    newest, _ = await rotate_key(store, "rotating")  # no grace: the old secrets stop now
    assert await store.get_by_hash(KeyHasher()(old)) is None
    assert await store.get_by_hash(KeyHasher()(new)) is None
    found = await store.get_by_hash(KeyHasher()(newest))
    assert found is not None and found.previous_key_hash is None and found.previous_valid_until is None


async def test_stored_rows_never_contain_the_plaintext_key(backend: Backend) -> None:
    store = (await backend.stores()).keys
    created = [await create_key(store, f"k{i}") for i in range(5)]
    stored = repr(await backend.rows("SELECT * FROM api_keys"))
    for plaintext, record in created:
        assert record.key_hash in stored  # we are looking at the right rows
        assert plaintext not in stored
        assert plaintext.removeprefix("sk-sb-") not in stored


async def test_a_second_store_on_the_same_database_sees_every_change(backend: Backend) -> None:
    one, other = await backend.keys(), await backend.keys()
    _, record = await create_key(one, "shared")
    assert await other.get_by_hash(record.key_hash) == record
    await other.set_state("shared", KeyState.DISABLED)
    assert (await one.get(record.key_id)).state is KeyState.DISABLED  # type: ignore[union-attr]
    await other.delete(record.key_id)
    assert await one.list_all() == []


# ------------------------------------------------------------------------------------------------ ledger

USAGE_COLUMNS = (
    "request_id, key_id, platform, account_id, model, upstream_model, input_tokens, output_tokens,"
    " cache_read_input_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens,"
    " cache_creation_1h_input_tokens, reasoning_tokens, status_code, CAST(stream AS INTEGER),"
    " CAST(truncated AS INTEGER), duration_seconds, time_to_first_token_seconds, client_format, admission_id,"
    " session_id, CAST(usage_estimated AS INTEGER), end_reason, CAST(failed AS INTEGER), cost_micro_usd"
)


async def test_ledger_writes_each_request_id_once_even_within_a_batch(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    assert await ledger.append([]) == []
    first = await ledger.append([entry("r1"), entry("r2"), entry("r1", input_tokens=99)])
    assert [e.request_id for e in first] == ["r1", "r2"]
    assert first[0].input_tokens == 10
    again = await ledger.append([entry("r2"), entry("r3")])
    assert [e.request_id for e in again] == ["r3"]
    assert await backend.rows("SELECT request_id, input_tokens FROM usage_records ORDER BY request_id") == [
        ("r1", 10), ("r2", 10), ("r3", 10),
    ]


async def test_append_returns_the_new_entries_in_the_batch_order(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    await ledger.append([entry("m"), entry("c")])
    batch = [entry(request_id) for request_id in ("z", "c", "a", "m", "b", "z")]
    assert await ledger.append(batch) == [batch[0], batch[2], batch[4]]


async def test_every_field_of_an_entry_is_stored(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    full = entry("full", account_id="openai/team", upstream_model="gpt-4o-2024-08-06", input_tokens=1_000,
                 output_tokens=200, cache_read_input_tokens=50, cache_creation_input_tokens=40,
                 cache_creation_5m_input_tokens=15, cache_creation_1h_input_tokens=25, reasoning_tokens=30,
                 status_code=200, stream=True, truncated=True, duration_seconds=1.5, time_to_first_token_seconds=0.25,
                 client_format="openai", admission_id="adm-1", session_id="s1", usage_estimated=True,
                 end_reason="upstream_broke", failed=False, cost_micro_usd=4_050)
    bare = entry("bare", status_code=502, end_reason="error", failed=True, cost_micro_usd=0)
    unpriced = entry("unpriced", cost_micro_usd=None)
    assert await ledger.append([full, bare, unpriced]) == [full, bare, unpriced]
    assert await backend.rows(f"SELECT {USAGE_COLUMNS} FROM usage_records ORDER BY request_id") == [
        ("bare", "key_0123456789ab", "openai", "", "gpt-4o", "", 10, 5, 0, 0, 0, 0, 0, 502, 0, 0, 0.0, None,
         "", "", "", 0, "error", 1, 0),
        ("full", "key_0123456789ab", "openai", "openai/team", "gpt-4o", "gpt-4o-2024-08-06", 1_000, 200, 50, 40,
         15, 25, 30, 200, 1, 1, 1.5, 0.25, "openai", "adm-1", "s1", 1, "upstream_broke", 0, 4_050),
        ("unpriced", "key_0123456789ab", "openai", "", "gpt-4o", "", 10, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None,
         "", "", "", 0, "", 0, None),
    ]


async def test_ledger_persists_across_reopen_and_stays_idempotent(backend: Backend) -> None:
    first = await backend.ledger()
    await first.append([entry("r1", truncated=True, stream=True, time_to_first_token_seconds=0.25)])
    await first.close()
    reopened = await backend.ledger()
    assert await reopened.append([entry("r1")]) == []
    assert await backend.rows(
        "SELECT request_id, CAST(stream AS INTEGER), CAST(truncated AS INTEGER), time_to_first_token_seconds"
        " FROM usage_records") == [("r1", 1, 1, 0.25)]


async def test_large_batches_are_written_whole_and_idempotently(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    batch = [entry(f"r{i}") for i in range(1200)]
    assert len(await ledger.append(batch)) == 1200
    assert await ledger.append(batch[600:] + [entry("new")]) == [entry("new")]
    assert await backend.rows("SELECT COUNT(*) FROM usage_records") == [(1201,)]


async def test_text_from_the_network_with_a_nul_is_kept_not_refused_forever(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    odd = entry("nul-1", model="gpt\x00-4o", session_id="s\x00")
    assert await ledger.append([odd, entry("after")]) == [odd, entry("after")]
    assert await ledger.append([odd]) == []
    assert await backend.rows("SELECT COUNT(*) FROM usage_records") == [(2,)]


# ------------------------------------------------------------------------------------------------ summaries

KEY_A, KEY_B = "key_aaaaaaaaaaaa", "key_bbbbbbbbbbbb"
MAY_1, MAY_2, MAY_3 = date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3)


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0, offset_hours: int = 0) -> datetime:
    zone = timezone(timedelta(hours=offset_hours))
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=zone)


LEDGER = [
    entry("a1", KEY_A, upstream_model="gpt-4o-2024", account_id="openai/one", started_at=at(MAY_1, 23, 59, 59, 999_999),
          input_tokens=100, output_tokens=20, cache_read_input_tokens=5, reasoning_tokens=3, cost_micro_usd=1_000),
    entry("a2", KEY_A, account_id="openai/two", started_at=at(MAY_2), input_tokens=10, output_tokens=1,
          cost_micro_usd=None),
    entry("a3", KEY_A, platform="claude-console", model="claude-x", upstream_model="claude-x-2026",
          account_id="claude/one", started_at=at(MAY_2, 10, offset_hours=2), input_tokens=7, output_tokens=0,
          cache_creation_input_tokens=40, status_code=502, end_reason="error", failed=True, cost_micro_usd=0),
    entry("a4", KEY_A, upstream_model="gpt-4o-2024", account_id="openai/one", started_at=at(MAY_1, 22, offset_hours=-4),
          input_tokens=1, output_tokens=0, cost_micro_usd=5),  # 2026-05-02T02:00Z
    entry("a5", KEY_A, account_id="openai/two", started_at=at(MAY_3), input_tokens=999, cost_micro_usd=9),
    entry("b1", KEY_B, model="a-model", account_id="openai/one", started_at=at(MAY_1, 12), input_tokens=50,
          cost_micro_usd=50),
    entry("b2", KEY_B, model="Z-model", account_id="openai/one", started_at=at(MAY_1, 13), input_tokens=60,
          cost_micro_usd=None),
]


def totals(summary: UsageSummary) -> tuple[int, ...]:
    """requests, failed, input, output, cache read, cache write, reasoning, cost, unpriced."""
    return (summary.requests, summary.failed_requests, summary.input_tokens, summary.output_tokens,
            summary.cache_read_input_tokens, summary.cache_creation_input_tokens, summary.reasoning_tokens,
            summary.cost_micro_usd, summary.unpriced_requests)


async def summarised(backend: Backend) -> Ledger:
    ledger = (await backend.stores()).ledger
    assert len(await ledger.append(LEDGER)) == len(LEDGER)
    return ledger


async def test_a_summary_by_utc_day_counts_a_range_of_one_key(backend: Backend) -> None:
    ledger = await summarised(backend)
    days = await ledger.summary(key_id=KEY_A, since=at(MAY_1), until=at(MAY_3), by=[Dimension.DAY])
    assert [(s.day, s.key_id, s.model) for s in days] == [(MAY_1, None, None), (MAY_2, None, None)]
    assert [totals(s) for s in days] == [
        (1, 0, 100, 20, 5, 0, 3, 1_000, 0),  # a1, the last microsecond of May 1st
        (3, 1, 18, 1, 0, 40, 0, 5, 1),  # a2, a3 (08:00Z, failed), a4 (02:00Z): one unpriced
    ]
    edge = await ledger.summary(key_id=KEY_A, since=at(MAY_1, 23, 59, 59, 999_999), until=at(MAY_2), by=[])
    assert [totals(s) for s in edge] == [(1, 0, 100, 20, 5, 0, 3, 1_000, 0)]  # since is in, until is out


async def test_a_summary_by_model_groups_by_platform_and_the_model_billed(backend: Backend) -> None:
    ledger = await summarised(backend)
    models = await ledger.summary(key_id=KEY_A, by=[Dimension.MODEL])
    assert [(s.platform, s.model, s.requests, s.input_tokens, s.cost_micro_usd) for s in models] == [
        ("claude-console", "claude-x-2026", 1, 7, 0),
        ("openai", "gpt-4o", 2, 1_009, 9),  # a2 and a5: no upstream model, so the one asked for
        ("openai", "gpt-4o-2024", 2, 101, 1_005),
    ]
    bytewise = await ledger.summary(key_id=KEY_B, by=[Dimension.MODEL])
    assert [(s.model, s.unpriced_requests) for s in bytewise] == [("Z-model", 1), ("a-model", 0)]


async def test_a_summary_by_account_and_by_key_and_day_across_keys(backend: Backend) -> None:
    ledger = await summarised(backend)
    accounts = await ledger.summary(key_id=KEY_A, until=at(MAY_3), by=[Dimension.ACCOUNT])
    assert [(s.account_id, s.requests, s.failed_requests, s.cost_micro_usd, s.unpriced_requests)
            for s in accounts] == [
        ("claude/one", 1, 1, 0, 0), ("openai/one", 2, 0, 1_005, 0), ("openai/two", 1, 0, 0, 1)]
    by_key_day = await ledger.summary(since=at(MAY_1), by=[Dimension.KEY, Dimension.DAY])
    assert [(s.key_id, s.day, s.requests, s.input_tokens) for s in by_key_day] == [
        (KEY_A, MAY_1, 1, 100), (KEY_A, MAY_2, 3, 18), (KEY_A, MAY_3, 1, 999), (KEY_B, MAY_1, 2, 110),
    ]


async def test_a_summary_without_groups_is_one_row_or_none(backend: Backend) -> None:
    ledger = (await backend.stores()).ledger
    assert await ledger.summary() == []
    await ledger.append(LEDGER)
    (everything,) = await ledger.summary()
    assert totals(everything) == (7, 1, 1_227, 36, 5, 40, 3, 1_064, 2)
    assert (everything.key_id, everything.day, everything.platform) == (None, None, None)
    assert await ledger.summary(key_id="key_000000000000") == []
    assert await ledger.summary(since=at(MAY_3), until=at(MAY_1)) == []
    with pytest.raises(ValueError, match="at most once"):
        await ledger.summary(by=[Dimension.DAY, Dimension.DAY])


# ------------------------------------------------------------------------------------------------ change log


async def test_every_change_of_a_key_is_logged_and_its_last_use_is_not(backend: Backend) -> None:
    store = (await backend.stores()).keys
    start, nothing = await store.changes_since(-1)
    assert nothing == []
    _, created = await create_key(store, "logged", pepper="p")
    _, other = await create_key(store, "other", pepper="p")
    seq, changed = await store.changes_since(start)
    assert changed == [created.key_id, other.key_id] and seq > start
    assert await store.changes_since(seq) == (seq, [])

    await store.touch({created.key_id: datetime.now(UTC)})  # a use is not a change
    assert await store.changes_since(seq) == (seq, [])

    await store.set_state("logged", KeyState.DISABLED)
    await rotate_key(store, "logged", pepper="p")
    await store.update(dataclasses.replace(other, limits=KeyLimits(requests_per_minute=5)))
    await store.delete("logged")
    latest, changed = await store.changes_since(seq)
    assert changed == [created.key_id, other.key_id]  # each once, in order of first change
    assert latest > seq and (await store.changes_since(-1))[0] == latest
