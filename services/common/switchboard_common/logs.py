"""Logging setup: one line per event, level from the environment, secrets never printed.

Services log identities (key names, account ids), never credentials or key
hashes. The filter here is the net under that rule, at every level: in the
formatted message and in any exception text, a Switchboard key (`sk-sb-…`) or a
vendor key (`sk-…`) keeps only a short prefix, and any run of 64 or more hex
characters (a SHA-256 or HMAC key hash) is replaced whole. `aiosqlite` echoes
every query and its parameters at DEBUG, so it is held at WARNING or above.
"""

import logging
import os
import re
import sys

# Switchboard keys ("sk-sb-" + 40 url-safe characters) keep "sk-sb-" and 4 characters;
# vendor keys ("sk-ant-…", "sk-proj-…", "sk-…") keep "sk-" and 6.
_KEY = re.compile(r"(sk-sb-[A-Za-z0-9_\-]{4}|sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+")
_HEX_HASH = re.compile(r"[0-9a-fA-F]{64,}")
HASH_MASK = "[hash]"
# Loggers whose DEBUG output carries query parameters (key hashes): never below WARNING.
QUIET_LOGGERS = ("aiosqlite",)


def redact(text: str) -> str:
    """`text` with keys cut to a short prefix and 64-hex digests removed."""
    text = _KEY.sub(r"\1…", text)
    return _HEX_HASH.sub(HASH_MASK, text)


class RedactingFilter(logging.Filter):
    """Masks keys and key hashes in the final message and in the exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = redact(message)
        except Exception:  # arguments that do not fit the format: never let them reach handleError's dump
            message, masked = "", redact(f"{record.msg} (log arguments dropped: they did not fit the format)")
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def setup(service: str) -> logging.Logger:
    level = os.environ.get("SWITCHBOARD_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(service)
