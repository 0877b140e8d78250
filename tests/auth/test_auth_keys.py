"""Key minting, hashing and validation (keys.py) and the rule that only hashes reach the database."""

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard_auth.errors import InvalidKeySpec, KeyNameTaken
from switchboard_auth.keys import (
    KEY_ID_PATTERN,
    KeyHasher,
    KeyState,
    create_key,
    generate_key,
    new_key_id,
)
from switchboard_auth.policy import CompiledKey
from switchboard_auth.sqlite_store import SqliteKeyStore


def test_generated_keys_have_the_documented_shape_and_do_not_repeat() -> None:
    keys = {generate_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        assert re.fullmatch(r"sk-sb-[A-Za-z0-9_-]{40}", key)


def test_key_ids_are_random_and_public_shaped() -> None:
    ids = {new_key_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(KEY_ID_PATTERN.fullmatch(i) for i in ids)


def test_hash_without_pepper_is_sha256_hex() -> None:
    assert KeyHasher()("sk-sb-abc") == hashlib.sha256(b"sk-sb-abc").hexdigest()


def test_hash_with_pepper_is_hmac_sha256_and_differs_from_plain() -> None:
    peppered = KeyHasher("pepper")("sk-sb-abc")
    assert peppered == hmac.new(b"pepper", b"sk-sb-abc", hashlib.sha256).hexdigest()
    assert peppered != KeyHasher()("sk-sb-abc")
    assert peppered != KeyHasher("other")("sk-sb-abc")


async def test_created_key_verifies_by_hash_and_record_carries_the_policy(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    try:
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
    finally:
        await store.close()


async def test_database_file_never_contains_the_plaintext_key(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    created = [await create_key(store, f"k{i}") for i in range(5)]
    await store.close()
    raw = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))
    for plaintext, record in created:
        assert record.key_hash.encode() in raw  # we are looking at the right bytes
        assert plaintext.encode() not in raw
        assert plaintext.removeprefix("sk-sb-").encode() not in raw


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
    ],
)
async def test_invalid_specs_are_refused_before_storing(db_path: Path, options: dict, message: str) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    try:
        name = options.pop("name", "ok")
        with pytest.raises(InvalidKeySpec, match=message):
            await create_key(store, name, **options)
        assert await store.list_all() == []
    finally:
        await store.close()


async def test_names_are_unique_unless_replacing(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    try:
        first, first_record = await create_key(store, "demo")
        with pytest.raises(KeyNameTaken):
            await create_key(store, "demo")
        second, second_record = await create_key(store, "demo", replace=True)
        assert await store.get_by_hash(first_record.key_hash) is None
        assert await store.get("demo") == second_record
        assert second != first
    finally:
        await store.close()


async def test_a_printed_or_logged_record_shows_no_hash(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    try:
        _, record = await create_key(store, "shown")
    finally:
        await store.close()
    assert record.key_id in repr(record)
    assert record.key_hash not in repr(record)
    assert record.key_hash not in repr(CompiledKey.of(record))
