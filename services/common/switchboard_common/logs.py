"""Logging setup: one line per event, level from the environment, secrets never printed.

Services log identities (key names, account ids), never credentials. The filter
here is the net under that rule: anything that looks like a key is masked.
"""

import logging
import os
import re
import sys

_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+")


class RedactingFilter(logging.Filter):
    """Masks anything shaped like an API key in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET.sub(r"\1…", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup(service: str) -> logging.Logger:
    level = os.environ.get("SWITCHBOARD_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return logging.getLogger(service)
