"""Logging: no key and no key hash reaches the output, at any level, from any logger."""

import hashlib
import hmac
import io
import logging
from collections.abc import Iterator

import aiosqlite
import pytest

from switchboard_common import logs

KEY = "sk-sb-Q2xhdWRlQ29kZUlzR3JlYXQ-x_9zYWZlVG9TaGFyZQ"  # shaped like keys.generate_key()
VENDOR_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
KEY_HASH = hashlib.sha256(KEY.encode()).hexdigest()
PEPPERED_HASH = hmac.new(b"pepper", KEY.encode(), hashlib.sha256).hexdigest().upper()
SECRETS = (KEY, KEY[10:30], VENDOR_KEY, VENDOR_KEY[12:], KEY_HASH, KEY_HASH[:40], PEPPERED_HASH)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`setup` rewires the root logger; put it (and aiosqlite's level) back afterwards."""
    root, quiet = logging.getLogger(), logging.getLogger("aiosqlite")
    handlers, root_level, quiet_level = root.handlers[:], root.level, quiet.level
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    quiet.setLevel(quiet_level)


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> io.StringIO:
    """What `setup("test")` at SWITCHBOARD_LOG_LEVEL=DEBUG prints."""
    monkeypatch.setenv("SWITCHBOARD_LOG_LEVEL", "DEBUG")
    logs.setup("test")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def assert_no_secrets(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output
        assert secret.lower() not in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"key={KEY}", "key=sk-sb-Q2xh…", id="switchboard-key"),
        pytest.param(f"Bearer {VENDOR_KEY}.", "Bearer sk-ant-ap….", id="vendor-key"),
        pytest.param(f"('{KEY_HASH}', 3)", "('[hash]', 3)", id="sha256-hex"),
        pytest.param(f"h={PEPPERED_HASH}", "h=[hash]", id="hmac-upper-hex"),
        pytest.param("x" + "ab" * 64 + "y", "x[hash]y", id="longer-hex-run"),
        pytest.param("a" * 63, "a" * 63, id="63-hex-kept"),
        pytest.param("request 3f2a9c01 took 12 ms", "request 3f2a9c01 took 12 ms", id="plain-text-kept"),
        pytest.param("sk-short", "sk-short", id="too-short-for-a-key"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert logs.redact(text) == expected


def test_debug_messages_arguments_and_tracebacks_are_masked(output: io.StringIO) -> None:
    debug_logs = logging.getLogger("test")
    debug_logs.debug("lookup key %s hash %s", KEY, KEY_HASH)
    debug_logs.info("upstream key " + VENDOR_KEY)
    debug_logs.warning("peppered %s", PEPPERED_HASH)
    try:
        raise ValueError(f"bad key {KEY} with hash {KEY_HASH}")
    except ValueError:
        debug_logs.exception("lookup failed for %s", KEY)
    debug_logs.debug("%d keys", KEY)  # arguments that do not fit the format
    text = output.getvalue()
    assert_no_secrets(text)
    assert "test DEBUG test: lookup key sk-sb-Q2xh… hash [hash]" in text
    assert "ValueError: bad key sk-sb-Q2xh… with hash [hash]" in text
    assert "Traceback" in text
    assert "%d keys (log arguments dropped" in text


async def test_aiosqlite_queries_are_not_logged_at_debug(output: io.StringIO) -> None:
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("CREATE TABLE keys (key_hash TEXT PRIMARY KEY, name TEXT)")
        await db.execute("INSERT INTO keys VALUES (?, ?)", (KEY_HASH, "team-a"))
        async with db.execute("SELECT name FROM keys WHERE key_hash = ?", (KEY_HASH,)) as cursor:
            assert await cursor.fetchone() == ("team-a",)
    logging.getLogger("aiosqlite").warning("still shown, masked: %s", KEY_HASH)
    text = output.getvalue()
    assert_no_secrets(text)
    assert "executing" not in text
    assert "aiosqlite: still shown, masked: [hash]" in text


@pytest.mark.parametrize(
    ("level", "aiosqlite_level"),
    [("DEBUG", logging.WARNING), ("info", logging.WARNING), ("ERROR", logging.ERROR)],
)
def test_aiosqlite_is_never_below_warning(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None, level: str, aiosqlite_level: int
) -> None:
    monkeypatch.setenv("SWITCHBOARD_LOG_LEVEL", level)
    logs.setup("test")
    assert logging.getLogger("aiosqlite").level == aiosqlite_level
