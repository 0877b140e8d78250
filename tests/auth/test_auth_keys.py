"""Key minting and hashing (keys.py) and the rule that only hashes reach the SQLite file (validation and what the
stores keep: test_auth_stores.py, on both backends)."""

import hashlib
import hmac
import re
from pathlib import Path

from switchboard_auth.keys import (
    KEY_ID_PATTERN,
    KeyHasher,
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


async def test_database_file_never_contains_the_plaintext_key(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    created = [await create_key(store, f"k{i}") for i in range(5)]
    await store.close()
    raw = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))
    for plaintext, record in created:
        assert record.key_hash.encode() in raw  # we are looking at the right bytes
        assert plaintext.encode() not in raw
        assert plaintext.removeprefix("sk-sb-").encode() not in raw


async def test_a_printed_or_logged_record_shows_no_hash(db_path: Path) -> None:
    store = await SqliteKeyStore.open(str(db_path))
    try:
        _, record = await create_key(store, "shown")
    finally:
        await store.close()
    assert record.key_id in repr(record)
    assert record.key_hash not in repr(record)
    assert record.key_hash not in repr(CompiledKey.of(record))
