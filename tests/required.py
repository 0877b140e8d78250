"""What a test does when a real service it needs (PostgreSQL, Redis, helm) cannot be reached: skipped on a
developer's machine, a failure in CI (CI=true), so no backend is ever left untested there."""

import os
from typing import NoReturn

import pytest


def unavailable(what: str, detail: object) -> NoReturn:
    """Skips the test, or fails it in CI; `what` names the service (and where), `detail` why it is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI: {detail}", pytrace=False)
    pytest.skip(f"no {what}: {detail}")
