"""What must hold after a fault, checked from what the clients got, the ledger, the routers and the logs.

Requests are matched to ledger records by session hint (`Outcome.session` = `usage_records.session_id`,
unique per request except within a conversation) and key.
"""

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from switchboard.router.v1 import router_pb2, router_pb2_grpc
from switchboard_stack.chaos.faults import Fault
from switchboard_stack.chaos.load import Key, Outcome
from switchboard_stack.chaos.topology import Topology

CLIENT_CLOSED = 499
_LEDGER_COLUMNS = ("request_id, key_id, session_id, account_id, status_code, input_tokens, output_tokens, "
                   "cache_read_input_tokens, cache_creation_input_tokens, cost_micro_usd, usage_estimated, "
                   "truncated, started_at, end_reason")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


async def ledger(topology: Topology, key_ids: Sequence[str]) -> list[Mapping[str, Any]]:
    conn = await asyncpg.connect(topology.database_url, timeout=5)
    try:
        rows = await conn.fetch(f"SELECT {_LEDGER_COLUMNS} FROM usage_records WHERE key_id = ANY($1::text[]) "
                                "ORDER BY started_at", list(key_ids))
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def settled_ledger(topology: Topology, keys: Sequence[Key], outcomes: Sequence[Outcome],
                         timeout: float = 45.0) -> list[Mapping[str, Any]]:
    """The ledger once the usage has landed: at least one record per complete answer and no change for 3 s
    (or `timeout`)."""
    needed = sum(1 for outcome in outcomes if outcome.complete)
    deadline = time.monotonic() + timeout
    last: list[Mapping[str, Any]] = []
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        rows = await ledger(topology, [key.key_id for key in keys])
        if len(rows) != len(last):
            last, stable_since = rows, time.monotonic()
        elif len(rows) >= needed and time.monotonic() - stable_since >= 3.0:
            break
        await asyncio.sleep(0.5)
    return last


async def in_flight(topology: Topology, timeout: float = 20.0) -> tuple[int, str]:
    """Leases the routers still count, once they had `timeout` to drop to 0; and per router."""
    deadline = time.monotonic() + timeout
    while True:
        counts: dict[str, int] = {}
        for router in topology.routers:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.ready_port}") as channel:
                try:
                    reply = await router_pb2_grpc.RouterServiceStub(channel).ListAccounts(
                        router_pb2.ListAccountsRequest(), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    counts[router.name] = -1
                    del exc
                    continue
            counts[router.name] = sum(status.in_flight for status in reply.accounts)
        total = sum(abs(count) for count in counts.values())
        if total == 0 or time.monotonic() > deadline:
            return total, ", ".join(f"{name} {count}" for name, count in counts.items())
        await asyncio.sleep(0.5)


def _by_session(items: Iterable[Any], key: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        groups[item[key] if isinstance(item, Mapping) else getattr(item, key)].append(item)
    return groups


def ledger_matches(outcomes: Sequence[Outcome], rows: Sequence[Mapping[str, Any]]) -> Check:
    """Every complete answer has its record (none lost) and no request has two (none doubled)."""
    records = _by_session(rows, "session_id")
    lost = doubled = 0
    examples: list[str] = []
    for session, sent in _by_session(outcomes, "session").items():
        complete = sum(1 for outcome in sent if outcome.complete)
        found = len(records.get(session, ()))
        if found < complete:
            lost += complete - found
            examples.append(f"lost {session[:20]} ({sent[0].kind})")
        if found > len(sent):
            doubled += found - len(sent)
            examples.append(f"doubled {session[:20]} ({sent[0].kind})")
    complete_total = sum(1 for outcome in outcomes if outcome.complete)
    detail = (f"{len(outcomes)} sent, {complete_total} complete, {len(rows)} records: {lost} lost, {doubled} doubled"
              + (f" [{'; '.join(examples[:3])}]" if examples else ""))
    return Check("ledger: 0 lost, 0 doubled", lost == 0 and doubled == 0, detail)


def tokens_match(outcomes: Sequence[Outcome], rows: Sequence[Mapping[str, Any]]) -> Check:
    """For each session whose every request completed (and has its one record), billed tokens = delivered."""
    records = _by_session(rows, "session_id")
    compared = mismatched = 0
    billed = delivered = 0
    examples: list[str] = []
    for session, sent in _by_session(outcomes, "session").items():
        found = records.get(session, [])
        if not all(outcome.complete for outcome in sent) or len(found) != len(sent):
            continue
        client_in = sum(outcome.input_tokens for outcome in sent)
        client_out = sum(outcome.output_tokens for outcome in sent)
        ledger_in = sum(row["input_tokens"] + row["cache_read_input_tokens"] + row["cache_creation_input_tokens"]
                        for row in found)
        ledger_out = sum(row["output_tokens"] for row in found)
        compared += 1
        billed += ledger_in + ledger_out
        delivered += client_in + client_out
        if (client_in, client_out) != (ledger_in, ledger_out):
            mismatched += 1
            examples.append(f"{sent[0].kind}: client {client_in}/{client_out}, ledger {ledger_in}/{ledger_out}")
    detail = (f"{compared} sessions, {billed} tokens billed, {delivered} delivered, {mismatched} differ"
              + (f" [{'; '.join(examples[:3])}]" if examples else ""))
    return Check("tokens billed = tokens produced", mismatched == 0 and compared > 0, detail)


def failures_free(rows: Sequence[Mapping[str, Any]]) -> Check:
    """A record of a failed call (an error status) carries no tokens and no cost, unless it is the estimate of a
    prompt the vendor was already working on (`usage_estimated`, a call ended by the client or the drain)."""
    failed = [row for row in rows if row["status_code"] >= 400 and row["status_code"] != CLIENT_CLOSED]
    charged = [row for row in failed if not row["usage_estimated"]
               and (row["input_tokens"] or row["output_tokens"] or (row["cost_micro_usd"] or 0))]
    estimated = sum(1 for row in rows if row["usage_estimated"])
    examples = [f"{row['status_code']} {row['account_id']} {row['input_tokens']}/{row['output_tokens']}"
                for row in charged[:3]]
    detail = (f"{len(failed)} failed records, {len(charged)} charged, {estimated} estimated prompts"
              + (f" [{'; '.join(examples)}]" if examples else ""))
    return Check("no charge for failed calls", not charged, detail)


def leases_returned(count: int, detail: str) -> Check:
    return Check("leases in flight back to 0", count == 0, detail)


def limits_held(keys: Sequence[Key], rows: Sequence[Mapping[str, Any]], fault: Fault) -> Check:
    """Admitted requests of an rpm-limited key (its ledger records) never more than GCRA allows over the
    phase: `rpm` at once plus `rpm` per minute since the first, plus one (a record's start is the edge's, a
    moment before the admission). Without Redis each auth replica may admit that much on its own (x2); an edge
    whose auth is gone counts the key's rpm on its own from its last ALLOW meanwhile (one more rpm's worth)."""
    notes: list[str] = []
    passed = True
    for key in keys:
        if not key.rpm:
            continue
        times = [row["started_at"].timestamp() for row in rows if row["key_id"] == key.key_id]
        if not times:
            notes.append(f"{key.name}: no records")
            continue
        span = max(times) - min(times)
        counters = (2 if fault.loses_redis else 1) + (1 if fault.loses_auth else 0)
        allowed = key.rpm * (1 + span / 60.0) * counters + 1
        passed = passed and len(times) <= allowed
        notes.append(f"{key.name}: {len(times)} admitted in {span:.0f} s, at most {allowed:.0f}")
    return Check("limits never exceeded", passed, "; ".join(notes) or "no limited key")


def sticky_sessions(outcomes: Sequence[Outcome], rows: Sequence[Mapping[str, Any]], fault: Fault) -> Check:
    """A conversation's records stay on one account, moving only off one the fault made unusable."""
    conversations = {outcome.session for outcome in outcomes if outcome.conversation}
    records = _by_session((row for row in rows if row["status_code"] < 400), "session_id")
    sent = _by_session(outcomes, "session")
    moves = bad = 0
    examples: list[str] = []
    for session in conversations:
        accounts = [row["account_id"] for row in sorted(records.get(session, []), key=lambda row: row["started_at"])]
        for before, after in zip(accounts, accounts[1:], strict=False):
            if before == after:
                continue
            moves += 1
            if before.rpartition("/")[2] not in fault.unusable and not fault.loses_redis:
                bad += 1
                statuses = ",".join(str(outcome.status) for outcome in sent.get(session, []))
                examples.append(f"{before} -> {after} (answers {statuses})")
    detail = (f"{len(conversations)} conversations, {moves} moves, {bad} off usable accounts"
              + (f" [{'; '.join(examples[:3])}]" if examples else ""))
    return Check("sticky sessions moved only off unusable accounts", bad == 0, detail)


def clean_answers(outcomes: Sequence[Outcome], fault: Fault) -> Check:
    """Every client got a whole answer or a clean error in its protocol, none hung; a killed replica's own
    connections may be reset."""
    hung = [outcome for outcome in outcomes if outcome.hung]
    resets = [outcome for outcome in outcomes if outcome.status is None and not outcome.hung]
    broken = [outcome for outcome in outcomes if outcome.status is not None and not
              (outcome.complete or outcome.clean_error or outcome.left)]
    if fault.resets:  # streams the killed replica was relaying end without a word
        resets += [outcome for outcome in broken if outcome.stream and outcome.status == 200]
        broken = [outcome for outcome in broken if not (outcome.stream and outcome.status == 200)]
    bad = len(hung) + len(broken) + (0 if fault.resets else len(resets))
    examples = [f"{outcome.kind}{' stream' if outcome.stream else ''} {outcome.status} {outcome.error[:90]!r}"
                for outcome in broken[:3]]
    examples += [f"{outcome.kind} reset: {outcome.transport_error[:80]}" for outcome in resets[:2]]
    detail = (f"{sum(1 for o in outcomes if o.complete)} complete, {sum(1 for o in outcomes if o.clean_error)} "
              f"clean errors, {sum(1 for o in outcomes if o.left)} left, {len(broken)} broken, {len(hung)} hung, "
              f"{len(resets)} resets" + (" (allowed)" if fault.resets and resets else "")
              + f"; statuses {_statuses(outcomes)}"
              + (f" [{'; '.join(examples)}]" if examples and bad else ""))
    return Check("complete answer or clean protocol error", bad == 0, detail)


def served_after(outcomes: Sequence[Outcome], recovered_at: float, least: int = 3) -> Check:
    """Once the fault is undone (plus a second), every kind of request (client format, or the OAuth account) is
    served again: of each kind sent at least `least` times since, some got a whole answer (or were being
    streamed one when their client left)."""
    after = [outcome for outcome in outcomes if outcome.started >= recovered_at + 1.0]
    kinds = sorted({outcome.kind for outcome in after})
    sent = {kind: sum(1 for outcome in after if outcome.kind == kind) for kind in kinds}
    served = {kind: sum(1 for outcome in after if outcome.kind == kind and (outcome.complete or outcome.left))
              for kind in kinds}
    starved = [kind for kind in kinds if not served[kind] and sent[kind] >= least]
    examples = [next(f"{o.kind} {o.status} {o.error[:100]!r}" for o in after if o.kind == kind) for kind in starved]
    detail = (" ".join(f"{kind} {served[kind]}/{sent[kind]}" for kind in kinds) or "no request after the fault") + (
        f" [{'; '.join(examples)}]" if examples else "")
    return Check("every request kind served after the fault", bool(kinds) and not starved, detail)


def no_false_not_found(outcomes: Sequence[Outcome]) -> Check:
    """The load asks only for models the pool serves: a 404 says such a model does not exist, where an account
    out of rotation (held, in error) should give a 503 with Retry-After."""
    wrong = [outcome for outcome in outcomes if outcome.status == 404]
    kinds = Counter(outcome.kind for outcome in wrong)
    example = f" [{wrong[0].kind}: {wrong[0].error[:110]!r}]" if wrong else ""
    detail = f"{len(wrong)} 404 answers" + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
                                              if wrong else "") + example
    return Check("no 404 for a model the pool serves", not wrong, detail)


def restarts_clean(problems: Sequence[str]) -> Check:
    """A replica restarted during the fault came up at once (no crash loop)."""
    counts = Counter(problems)
    detail = "; ".join(f"{problem} ({count}x)" for problem, count in counts.items())
    return Check("restarted replicas came up", not problems, detail or "no restart failed")


def _statuses(outcomes: Sequence[Outcome]) -> str:
    counts = Counter(outcome.status or 0 for outcome in outcomes)
    return " ".join(f"{status or 'none'}x{count}" for status, count in sorted(counts.items()))


def retry_after(outcomes: Sequence[Outcome]) -> Check:
    limited = [outcome for outcome in outcomes if outcome.status in (429, 503)]
    missing = [outcome for outcome in limited if not outcome.retry_after]
    examples = [f"{outcome.kind} {outcome.status} {outcome.error[:80]!r}" for outcome in missing[:3]]
    detail = f"{len(limited)} 429/503 answers, {len(missing)} without Retry-After" + (
        f" [{'; '.join(examples)}]" if examples else "")
    return Check("Retry-After on every 429/503", not missing, detail)


def no_secrets(log_paths: Iterable[Path], secrets: Iterable[str]) -> Check:
    found: list[str] = []
    wanted = [secret for secret in secrets if secret]
    for path in log_paths:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        for secret in wanted:
            if secret in text:
                found.append(f"{path.name}: {secret[:10]}...")
    return Check("no credential or key in any log line", not found, "; ".join(found[:5]) or
                 f"{len(wanted)} secrets searched in every log")
