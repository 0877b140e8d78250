"""The `switchboard keys` CLI end to end, as a real process against the same SQLite file a server reads."""

import asyncio
import json
import os
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard.auth.v1 import auth_pb2

from .auth_testing import Harness, run_cli, subprocess_env

KEY = re.compile(r"sk-sb-[A-Za-z0-9_-]{40}")


def stored_hashes(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [row[0] for row in conn.execute("SELECT key_hash FROM api_keys")]


async def test_create_prints_the_key_once_and_it_authorizes(harness: Harness) -> None:
    created = await run_cli("keys", "create", "cli-key", "--platform", "openai", "--model", "gpt-*", db=harness.db_path)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert KEY.fullmatch(lines[0])  # the key, alone on the first line
    plaintext = lines[0]
    assert created.stdout.count(plaintext) == 1
    assert plaintext not in created.stderr
    key_id = re.search(r"key_id: (key_[0-9a-f]{12})", created.stdout)
    assert key_id is not None

    response = await harness.authorize(plaintext, platforms=["azure-openai", "openai"], model="gpt-4o")
    assert response.decision == auth_pb2.DECISION_ALLOW
    assert response.identity.key_id == key_id.group(1)
    assert list(response.allowed_platforms) == ["openai"]


async def test_list_never_shows_a_key_or_a_hash(harness: Harness) -> None:
    created = await run_cli("keys", "create", "listed", "--group", "g1", "--expires-in", "30d", db=harness.db_path)
    plaintext = created.stdout.splitlines()[0]
    (key_hash,) = stored_hashes(harness.db_path)
    table = await run_cli("keys", "list", db=harness.db_path)
    as_json = await run_cli("keys", "list", "--json", db=harness.db_path)
    for listing in (table, as_json):
        assert listing.returncode == 0, listing.stderr
        assert "listed" in listing.stdout
        assert plaintext not in listing.stdout and key_hash not in listing.stdout
        assert not KEY.search(listing.stdout)
    (record,) = json.loads(as_json.stdout)
    assert record["name"] == "listed" and record["groups"] == ["g1"] and record["state"] == "active"
    expires = datetime.fromisoformat(record["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert "key_hash" not in record and "key" not in record


async def test_disable_enable_delete_take_effect_after_the_cache_ttl(harness: Harness) -> None:
    created = await run_cli("keys", "create", "toggled", db=harness.db_path)
    plaintext = created.stdout.splitlines()[0]
    key_id = re.search(r"key_[0-9a-f]{12}", created.stdout.splitlines()[1]).group(0)  # type: ignore[union-attr]
    assert (await harness.authorize(plaintext)).decision == auth_pb2.DECISION_ALLOW

    assert (await run_cli("keys", "disable", "toggled", db=harness.db_path)).returncode == 0
    harness.expire_cache()
    assert (await harness.authorize(plaintext)).reason == auth_pb2.REASON_KEY_DISABLED

    assert (await run_cli("keys", "enable", key_id, db=harness.db_path)).returncode == 0
    harness.expire_cache()
    assert (await harness.authorize(plaintext)).decision == auth_pb2.DECISION_ALLOW

    deleted = await run_cli("keys", "delete", "toggled", db=harness.db_path)
    assert deleted.returncode == 0 and key_id in deleted.stdout
    harness.expire_cache()
    assert (await harness.authorize(plaintext)).reason == auth_pb2.REASON_KEY_INVALID


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(("keys", "disable", "ghost"), 1, "no key", id="disable-unknown"),
        pytest.param(("keys", "delete", "key_0123456789ab"), 1, "no key", id="delete-unknown-id"),
        pytest.param(("keys", "create", "x", "--platform", "nope"), 2, "unknown platform", id="bad-platform"),
        pytest.param(("keys", "create", "x", "--expires-in", "soon"), 2, "invalid duration", id="bad-duration"),
        pytest.param(("keys", "create", "x", "--expires", "2020-01-01T00:00:00Z"), 2, "in the past", id="past"),
        pytest.param(("keys", "create", "x", "--expires", "2099-01-01", "--expires-in", "1d"), 2, "not allowed",
                     id="both-expiries"),
        pytest.param(("keys", "frobnicate"), 2, "invalid choice", id="unknown-command"),
    ],
)
async def test_exit_codes(db_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = await run_cli(*args, db=db_path)
    assert result.returncode == code
    assert message in result.stderr


async def test_taken_name_is_a_usage_error_and_replace_mints_a_new_key(db_path: Path) -> None:
    first = await run_cli("keys", "create", "dup", db=db_path)
    again = await run_cli("keys", "create", "dup", db=db_path)
    assert (again.returncode, again.stdout) == (2, "")
    assert "already exists" in again.stderr
    replaced = await run_cli("keys", "create", "dup", "--replace", "--json", db=db_path)
    assert replaced.returncode == 0
    document = json.loads(replaced.stdout)
    assert KEY.fullmatch(document["key"]) and document["key"] != first.stdout.splitlines()[0]
    assert len(stored_hashes(db_path)) == 1


async def test_installed_console_script_runs_the_same_cli(db_path: Path) -> None:
    script = Path(sys.executable).parent / "switchboard"
    assert os.access(script, os.X_OK), "run `make` to install the switchboard console script"
    created = await run_cli("keys", "create", "via-script", db=db_path, executable=[str(script)])
    assert created.returncode == 0, created.stderr
    listed = await run_cli("keys", "list", db=db_path, executable=[str(script)])
    assert "via-script" in listed.stdout


async def test_database_comes_from_the_environment_unless_db_is_given(tmp_path: Path) -> None:
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    command = [sys.executable, "-m", "switchboard_auth.cli", "keys"]
    env = subprocess_env(SWITCHBOARD_AUTH_DB_PATH=str(env_db))
    for args in (["create", "from-env"], ["create", "from-flag", "--db", str(flag_db)]):
        proc = await asyncio.create_subprocess_exec(*command, *args, env=env, stdout=asyncio.subprocess.PIPE)
        await proc.communicate()
        assert proc.returncode == 0
    with sqlite3.connect(env_db) as conn:
        assert conn.execute("SELECT name FROM api_keys").fetchall() == [("from-env",)]
    with sqlite3.connect(flag_db) as conn:
        assert conn.execute("SELECT name FROM api_keys").fetchall() == [("from-flag",)]
