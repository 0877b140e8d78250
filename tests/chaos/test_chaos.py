"""The chaos suite's short form: the multi-replica topology under a small load, a few faults, every check held.

The faults here are those the gateway passes today; `make chaos` runs them all (see the README). Needs the
machine's PostgreSQL and Redis: skipped without them on a developer's machine, failed in CI (CI=true).
"""

import asyncio
from pathlib import Path

from switchboard_stack.chaos.run import Pacing, missing_servers, run_chaos

from ..required import unavailable

# Left out until the services pass them: "none" (the baseline, whose OAuth account ends in error when both edges
# refresh its token through different routers; its held account answered 404), "oauth-refresh-down" (404 too),
# "router-kill" (conversations move between usable accounts), "auth-restart-postgres-down" and "together" (an
# auth replica restarted while PostgreSQL is down exits instead of starting).
FAULTS = ["upstream-5xx", "mid-stream-cut", "postgres-down", "edge-sigterm"]


def test_faults_keep_every_promise(tmp_path: Path) -> None:
    problems = missing_servers()
    if problems:
        unavailable("PostgreSQL and Redis for the chaos suite", "; ".join(problems))
    results = asyncio.run(run_chaos(tmp_path, FAULTS, Pacing(workers=6, warmup=2.0, hold=4.0, cooldown=4.0),
                                    verbose=False))
    failed = [f"{result.fault.name}: {check.name}: {check.detail}"
              for result in results for check in result.checks if not check.passed]
    assert not failed, "\n".join(failed)
    assert all(len(result.outcomes) > 20 for result in results)
