"""`make chaos`: every fault one at a time under load, then all together; the checks printed per fault.

Each phase gets keys of its own (one unlimited, one with `--rpm`), runs the load for `warmup` seconds, injects
its fault, keeps the load on for `cooldown` seconds after it is undone, waits for the usage to land in the
ledger, then checks (`checks`). Exit status 1 when any check failed, 2 when PostgreSQL or Redis is missing.
"""

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from switchboard_stack.chaos import checks
from switchboard_stack.chaos.checks import Check
from switchboard_stack.chaos.faults import FAULTS, Fault
from switchboard_stack.chaos.load import WEIGHTS, Key, Load, Outcome, create_key
from switchboard_stack.chaos.topology import POSTGRES_URL, REDIS_URL, Topology, can_reach

ONE_AT_A_TIME = [name for name in FAULTS if name != "together"]
LIMITED_RPM = 20


@dataclass
class PhaseResult:
    fault: Fault
    outcomes: list[Outcome]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


@dataclass(frozen=True)
class Pacing:
    workers: int = 6
    warmup: float = 4.0
    hold: float = 8.0
    cooldown: float = 6.0


async def phase_keys(topology: Topology, name: str) -> list[Key]:
    """One unlimited key (three in four requests) and one limited to `LIMITED_RPM` requests a minute."""
    base = f"chaos-{topology.tag}-{name}"
    free, limited = await asyncio.gather(
        asyncio.to_thread(create_key, topology.database_url, base),
        asyncio.to_thread(create_key, topology.database_url, f"{base}-rpm", "--rpm", str(LIMITED_RPM)))
    return [free, free, free, limited]


async def run_phase(topology: Topology, fault: Fault, pacing: Pacing, all_keys: list[str]) -> PhaseResult:
    keys = await phase_keys(topology, fault.name)
    all_keys.extend(key.secret for key in keys)
    load = Load(topology.base_url, keys, workers=pacing.workers, label=fault.name, kinds=fault.kinds,
                weights=tuple(WEIGHTS[kind] for kind in fault.kinds))
    restarts_before = len(topology.restart_problems)
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(pacing.warmup)
        await fault.run(topology, pacing.hold)
        recovered_at = time.time()
        await asyncio.sleep(pacing.cooldown)
    finally:
        stop.set()
        await task
    unique = list({key.key_id: key for key in keys}.values())
    rows = await checks.settled_ledger(topology, unique, load.outcomes)
    write_outcomes(topology.workdir / f"{fault.name}.outcomes.jsonl", load.outcomes)
    leases, per_router = await checks.in_flight(topology)
    logs = [topology.workdir / f"{replica.name}.log" for replica in [*topology.replicas, topology.simulator]
            if replica is not None]
    result = PhaseResult(fault, load.outcomes)
    result.checks = [
        checks.ledger_matches(load.outcomes, rows),
        checks.tokens_match(load.outcomes, rows),
        checks.failures_free(rows),
        checks.leases_returned(leases, per_router),
        checks.limits_held(unique, rows, fault),
        checks.sticky_sessions(load.outcomes, rows, fault),
        checks.clean_answers(load.outcomes, fault),
        checks.served_after(load.outcomes, recovered_at),
        checks.no_false_not_found(load.outcomes),
        checks.restarts_clean(topology.restart_problems[restarts_before:]),
        checks.retry_after(load.outcomes),
        checks.no_secrets(logs, [*topology.secrets(), *all_keys]),
    ]
    return result


def write_outcomes(path: Path, outcomes: Sequence[Outcome]) -> None:
    """What every client got, one JSON object a line, for a closer look at a failed check."""
    path.write_bytes(b"".join(orjson.dumps(dataclasses.asdict(outcome)) + b"\n" for outcome in outcomes))


def print_result(result: PhaseResult) -> None:
    stream = sys.stdout
    width = max(len(check.name) for check in result.checks)
    print(f"\n== {result.fault.name}: {result.fault.what} ({len(result.outcomes)} requests)", file=stream)
    for check in result.checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name:<{width}}  {check.detail}", file=stream)
    stream.flush()


def print_summary(results: Sequence[PhaseResult]) -> None:
    print("\n== summary", flush=True)
    for result in results:
        failed = [check.name for check in result.checks if not check.passed]
        print(f"  {'PASS' if not failed else 'FAIL'}  {result.fault.name:<27} "
              + ("; ".join(failed) if failed else "all checks hold"), flush=True)


def missing_servers() -> list[str]:
    problems = []
    for label, url, port in (("PostgreSQL", POSTGRES_URL, 5432), ("Redis", REDIS_URL, 6379)):
        why = can_reach(url, port)
        if why is not None:
            problems.append(f"{label} unreachable ({why})")
    return problems


async def run_chaos(workdir: Path, names: Sequence[str], pacing: Pacing, *, verbose: bool = True) -> list[PhaseResult]:
    """Starts the topology in `workdir`, runs the named faults in order and returns their results."""
    results: list[PhaseResult] = []
    all_keys: list[str] = []
    async with Topology(workdir) as topology:
        if verbose:
            print(f"topology up: balancer {topology.base_url}, schema {topology.schema}, Redis namespace "
                  f"{topology.namespace}, logs in {workdir}", flush=True)
        for name in names:
            started = time.monotonic()
            result = await run_phase(topology, FAULTS[name], pacing, all_keys)
            results.append(result)
            if verbose:
                print_result(result)
                print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join([*ONE_AT_A_TIME, "together"]),
                        help=f"comma-separated, in order; known: {', '.join(FAULTS)}")
    parser.add_argument("--workers", type=int, default=Pacing.workers, help="clients sending at once")
    parser.add_argument("--hold", type=float, default=Pacing.hold, help="seconds each fault lasts")
    parser.add_argument("--warmup", type=float, default=Pacing.warmup)
    parser.add_argument("--cooldown", type=float, default=Pacing.cooldown)
    parser.add_argument("--workdir", type=Path, default=None, help="logs and state (default: a temporary dir)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.faults.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    problems = missing_servers()
    if problems:
        print("chaos needs the machine's PostgreSQL and Redis:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="switchboard-chaos-"))
    pacing = Pacing(args.workers, args.warmup, args.hold, args.cooldown)
    results = asyncio.run(run_chaos(workdir.resolve(), names, pacing))
    print_summary(results)
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
