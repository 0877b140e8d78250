"""`switchboard keys usage NAME|KEY_ID`: a key's ledger per UTC day, model or account, as a table or JSON, as a
real process on both backends."""

import json
from datetime import UTC, datetime

from switchboard_auth.keys import create_key
from switchboard_auth.usage import UsageEntry

from .store_backends import (
    Backend,
    backend_fixture,  # noqa: F401
    run_switchboard,
)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)


async def with_usage(backend: Backend) -> str:
    """A key "team-a" with three records on May 1st and 2nd and one of another key; returns its key_id."""
    stores = await backend.stores()
    _, record = await create_key(stores.keys, "team-a")

    def used(request_id: str, started_at: datetime, key_id: str = record.key_id, **fields: object) -> UsageEntry:
        return UsageEntry(request_id=request_id, key_id=key_id, platform="openai", model="gpt-4o",
                          started_at=started_at, recorded_at=started_at, **fields)  # type: ignore[arg-type]

    await stores.ledger.append([
        used("r1", at(1), input_tokens=1_000, output_tokens=200, reasoning_tokens=50, account_id="openai/a",
             upstream_model="gpt-4o-2024-08-06", cost_micro_usd=4_050),
        used("r2", at(2, 23), input_tokens=10, account_id="openai/b", cost_micro_usd=None),
        used("r3", at(2, 0), input_tokens=3, status_code=502, end_reason="error", failed=True, cost_micro_usd=0,
             account_id="openai/a"),
        used("other", at(1), key_id="key_0123456789ab", input_tokens=7, cost_micro_usd=7),
    ])
    await stores.close()
    return record.key_id


def table(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()[1:]]


async def test_usage_by_day_is_a_table_with_a_total(backend: Backend) -> None:
    key_id = await with_usage(backend)
    shown = await run_switchboard("keys", "usage", "team-a", *backend.cli_args())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"usage of key team-a ({key_id}), all time, by day (UTC)"
    assert table(shown.stdout) == [
        ["DAY", "REQUESTS", "FAILED", "INPUT", "OUTPUT", "CACHE_READ", "CACHE_WRITE", "REASONING", "COST_USD",
         "UNPRICED"],
        ["2026-05-01", "1", "0", "1000", "200", "0", "0", "50", "0.004050", "0"],
        ["2026-05-02", "2", "1", "13", "0", "0", "0", "0", "0.000000", "1"],
        ["TOTAL", "3", "1", "1013", "200", "0", "0", "50", "0.004050", "1"],
    ]


async def test_usage_by_model_as_json_for_a_range_of_days(backend: Backend) -> None:
    key_id = await with_usage(backend)
    shown = await run_switchboard("keys", "usage", key_id, "--by", "model", "--since", "2026-05-01",
                                  "--until", "2026-05-01", "--json", *backend.cli_args())
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert (document["key_id"], document["name"], document["by"]) == (key_id, "team-a", "model")
    assert (document["since"], document["until"]) == ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")  # the day whole
    assert document["rows"] == [{
        "platform": "openai", "model": "gpt-4o-2024-08-06", "requests": 1, "failed_requests": 0,
        "input_tokens": 1_000, "output_tokens": 200, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
        "reasoning_tokens": 50, "cost_micro_usd": 4_050, "unpriced_requests": 0, "cost_usd": "0.004050",
    }]
    assert document["total"]["requests"] == 1 and document["total"]["cost_usd"] == "0.004050"


async def test_usage_by_account_from_a_time_on(backend: Backend) -> None:
    await with_usage(backend)
    shown = await run_switchboard("keys", "usage", "team-a", "--by", "account", "--since", "2026-05-02T00:00:00Z",
                                  *backend.cli_args())
    assert shown.returncode == 0, shown.stderr
    assert table(shown.stdout)[1:] == [
        ["openai/a", "1", "1", "3", "0", "0", "0", "0", "0.000000", "0"],
        ["openai/b", "1", "0", "10", "0", "0", "0", "0", "0.000000", "1"],
        ["TOTAL", "2", "1", "13", "0", "0", "0", "0", "0.000000", "1"],
    ]


async def test_a_deleted_keys_usage_is_found_by_key_id_and_an_unknown_name_is_exit_1(backend: Backend) -> None:
    key_id = await with_usage(backend)
    deleted = await run_switchboard("keys", "delete", "team-a", *backend.cli_args())
    assert deleted.returncode == 0, deleted.stderr
    shown = await run_switchboard("keys", "usage", key_id, "--json", *backend.cli_args())
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["name"] is None and document["total"]["requests"] == 3
    unknown = await run_switchboard("keys", "usage", "team-a", *backend.cli_args())
    assert unknown.returncode == 1 and "no key named" in unknown.stderr
    bad = await run_switchboard("keys", "usage", key_id, "--since", "last week", *backend.cli_args())
    assert bad.returncode == 2 and "invalid day or time" in bad.stderr


async def test_the_cli_finds_the_database_in_the_services_settings(backend: Backend) -> None:
    await with_usage(backend)
    setting = ({"SWITCHBOARD_AUTH_DATABASE_URL": backend.database_url} if backend.database_url
               else {"SWITCHBOARD_AUTH_DB_PATH": backend.db_path})
    shown = await run_switchboard("keys", "usage", "team-a", "--json", **setting)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["total"]["requests"] == 3
