"""`switchboard keys …`, `switchboard db migrate`: administer API keys and the auth database from a shell.

`keys usage NAME|KEY_ID` totals a key's ledger per UTC day, model or account
(`Ledger.summary`), as a table or JSON; costs are printed in USD from the
ledger's micro-dollars, with how many requests had no price.

Rules owned here:
- `create` prints the new key exactly once, alone on the first line of stdout
  (the key_id follows); nothing else ever prints a key or a key hash.
- Exit codes: 0 ok, 1 no such key, 2 usage error (bad arguments, invalid
  name/platform/expiry, name taken), 3 the database cannot be used.
- The database is `--database-url` (PostgreSQL) or `--db` (SQLite), else
  `SWITCHBOARD_AUTH_DATABASE_URL`, else `SWITCHBOARD_AUTH_DB_PATH`, else
  `./switchboard.db`, as for the service (`store.open_stores`), whose schema is
  migrated on opening; the hash pepper is `SWITCHBOARD_AUTH_KEY_PEPPER`.

Changes reach a running auth service within its cache TTL (2 s by default).
"""

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from switchboard_auth import settings as auth_settings
from switchboard_auth.errors import (
    AuthError,
    DatabaseUnreachable,
    InvalidKeySpec,
    KeyNameTaken,
    KeyNotFound,
    StoreError,
)
from switchboard_auth.key_views import iso as _iso
from switchboard_auth.key_views import public as _public
from switchboard_auth.keys import (
    CLIENTS,
    KEY_ID_PATTERN,
    KeyLimits,
    KeyPolicy,
    KeyRecord,
    KeyState,
    create_key,
    rotate_key,
)
from switchboard_auth.store import Stores, open_stores
from switchboard_auth.usage import DIMENSION_FIELDS, SUMMARY_TOTALS, Dimension, UsageSummary
from switchboard_common import platforms

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3
EXIT_CODES: dict[type[AuthError], int] = {
    KeyNotFound: EXIT_NOT_FOUND,
    InvalidKeySpec: EXIT_USAGE,
    KeyNameTaken: EXIT_USAGE,
    StoreError: EXIT_STORE,
    DatabaseUnreachable: EXIT_STORE,
}
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MICRO = Decimal("0.000001")


def _expires_in(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; use e.g. 45m, 12h, 30d, 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid timestamp {text!r}; use e.g. 2027-01-01T00:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # naive means UTC


def _parser() -> argparse.ArgumentParser:
    backend = argparse.ArgumentParser(add_help=False)
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard administration.")
    for where, default in ((backend, argparse.SUPPRESS), (parser, None)):
        where.add_argument("--db", default=default, metavar="PATH",
                           help="SQLite file (default: $SWITCHBOARD_AUTH_DB_PATH)")
        where.add_argument("--database-url", default=default, metavar="URL",
                           help="PostgreSQL, postgresql://USER:PASSWORD@HOST:PORT/DB (default: "
                                "$SWITCHBOARD_AUTH_DATABASE_URL; when neither is set, the SQLite file)")
    area = parser.add_subparsers(dest="area", required=True)
    database = area.add_parser("db", help="the auth database").add_subparsers(dest="command", required=True)
    database.add_parser("migrate", parents=[backend], help="bring the schema up to date (auth also does on start)")
    keys = area.add_parser("keys", help="manage API keys").add_subparsers(dest="command", required=True)

    create = keys.add_parser("create", parents=[backend], help="create a key and print it once")
    create.add_argument("name")
    create.add_argument(
        "--platform", action="append", default=[], metavar="P", help=f"allow platform P; one of {platforms.ALL}"
    )
    create.add_argument("--model", action="append", default=[], metavar="GLOB", help="allow models matching GLOB")
    create.add_argument("--group", action="append", default=[], metavar="G", help="account group to draw from")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires", type=_timestamp, metavar="TIME", help="UTC expiry, e.g. 2027-01-01T00:00:00Z")
    expiry.add_argument("--expires-in", type=_expires_in, metavar="DURATION", help="e.g. 12h, 30d, 2w")
    create.add_argument("--replace", action="store_true", help="delete a key of the same name first")
    create.add_argument("--json", action="store_true", help="print key and record as one JSON object")
    create.add_argument("--owner", default="", help="who the key belongs to (a person, a team)")
    create.add_argument("--description", default="", help="what the key is for")
    create.add_argument("--tag", action="append", default=[], metavar="T", help="a free-form tag (repeatable)")
    create.add_argument("--deny-platform", action="append", default=[], metavar="P", help="refuse platform P")
    create.add_argument("--deny-model", action="append", default=[], metavar="GLOB",
                        help="refuse models matching GLOB (deny wins over --model)")
    create.add_argument("--allow-client", action="append", default=[], metavar="C",
                        help=f"only this client program, on its own routes; one of {', '.join(CLIENTS)}")
    create.add_argument("--allow-ip", action="append", default=[], metavar="CIDR",
                        help="only from this address or network (as seen behind the edge's trusted proxies)")
    for flag, what in (("--rpm", "requests per minute"), ("--tpm", "tokens per minute"),
                       ("--tokens-per-day", "tokens per UTC day"), ("--concurrency", "requests at once")):
        create.add_argument(flag, type=_positive, default=None, metavar="N", help=what)
    for flag, what in (("--daily-budget", "USD per UTC day"), ("--monthly-budget", "USD per UTC month"),
                       ("--total-budget", "USD in all")):
        create.add_argument(flag, type=_usd, default=None, metavar="USD", help=what)

    show = keys.add_parser("show", parents=[backend], help="one key's record (never the key itself)")
    show.add_argument("ref", metavar="NAME|KEY_ID")
    show.add_argument("--json", action="store_true")
    rotate = keys.add_parser("rotate", parents=[backend], help="a new secret for the key, printed once")
    rotate.add_argument("ref", metavar="NAME|KEY_ID")
    rotate.add_argument("--grace", type=_expires_in, default=None, metavar="DURATION",
                        help="the old secret keeps working this long (e.g. 1h, 7d); default: it stops now")
    rotate.add_argument("--json", action="store_true")

    usage = keys.add_parser("usage", parents=[backend], help="a key's requests, tokens and cost (UTC)")
    usage.add_argument("ref", metavar="NAME|KEY_ID", help="a key, or the key_id of a deleted one")
    usage.add_argument("--since", type=_since, metavar="DATE",
                       help="from this UTC day (2026-05-01) or time (2026-05-01T12:00:00Z) on")
    usage.add_argument("--until", type=_until, metavar="DATE",
                       help="through this UTC day (2026-05-31), or up to this time (excluded)")
    usage.add_argument("--by", choices=("day", "model", "account"), default="day",
                       help="one row per UTC day (the default), platform and model billed, or account")
    usage.add_argument("--json", action="store_true")
    listing = keys.add_parser("list", parents=[backend], help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    for command, text in (("disable", "disable"), ("enable", "re-enable"), ("delete", "delete")):
        sub = keys.add_parser(command, parents=[backend], help=f"{text} a key")
        sub.add_argument("ref", metavar="NAME|KEY_ID")
    return parser


def _bound(text: str, day_end: bool) -> datetime:
    """A UTC day (its start, or with `day_end` the start of the next) or a time (naive means UTC)."""
    text = text.strip()
    try:
        if len(text) == 10:
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return start + timedelta(days=1) if day_end else start
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid day or time {text!r}; use e.g. 2026-05-01 or "
                                         "2026-05-01T12:00:00Z") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _since(text: str) -> datetime:
    return _bound(text, day_end=False)


def _until(text: str) -> datetime:
    return _bound(text, day_end=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _usd(text: str) -> int:
    """Dollars (up to six decimals) as integer micro-dollars."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(_MICRO):
        raise argparse.ArgumentTypeError(f"expected a positive amount in USD (e.g. 25 or 12.50), got {text!r}")
    return int(amount * 1_000_000)


def _table(records: Sequence[KeyRecord], now: datetime) -> str:
    header = ("NAME", "KEY_ID", "PREFIX", "STATE", "EXPIRES", "PLATFORMS", "MODELS", "GROUPS", "CREATED",
              "LAST_USED")
    rows = [header]
    for record in records:
        state = "expired" if record.state is KeyState.ACTIVE and record.is_expired(now) else record.state.value
        rows.append(
            (
                record.name,
                record.key_id,
                record.key_prefix or "-",
                state,
                _iso(record.expires_at) or "-",
                ",".join(record.allowed_platforms) or "*",
                ",".join(record.allowed_models) or "*",
                ",".join(record.groups) or "-",
                _iso(record.created_at) or "-",
                _iso(record.last_used_at) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


async def _run(args: argparse.Namespace, database_url: str, db_path: str, pepper: str) -> int:
    stores = await open_stores(database_url, db_path)
    try:
        return await _command(args, stores, pepper)
    finally:
        await stores.close()


async def _command(args: argparse.Namespace, stores: Stores, pepper: str) -> int:
    store = stores.keys
    now = datetime.now(UTC)
    if args.area == "db":
        applied = ", ".join(map(str, stores.migrated))
        print(f"{stores.location}: schema version {stores.schema_version} "
              + (f"(applied {applied})" if applied else "(up to date)"))
    elif args.command == "create":
        expires_at = args.expires or (now + args.expires_in if args.expires_in else None)
        plaintext, record = await create_key(
            store,
            args.name,
            pepper=pepper,
            platforms=args.platform,
            models=args.model,
            groups=args.group,
            expires_at=expires_at,
            replace=args.replace,
            owner=args.owner,
            description=args.description,
            tags=args.tag,
            policy=KeyPolicy(denied_platforms=tuple(args.deny_platform), denied_models=tuple(args.deny_model),
                             allowed_clients=tuple(args.allow_client), allowed_ips=tuple(args.allow_ip)),
            limits=KeyLimits(requests_per_minute=args.rpm, tokens_per_minute=args.tpm,
                             tokens_per_day=args.tokens_per_day, concurrency=args.concurrency,
                             daily_budget_micro_usd=args.daily_budget, monthly_budget_micro_usd=args.monthly_budget,
                             total_budget_micro_usd=args.total_budget),
        )
        if args.json:
            print(json.dumps({"key": plaintext, **_public(record, now)}))
        else:
            print(plaintext)
            print(f"key_id: {record.key_id}  name: {record.name}")
            print("Save this key now: it is not stored and cannot be shown again.", file=sys.stderr)
    elif args.command == "show":
        found = await store.get(args.ref)
        if found is None:
            raise KeyNotFound(args.ref)
        shown = _public(found, now)
        print(json.dumps(shown, indent=2) if args.json else "\n".join(
            f"{field}: {value}" for field, value in shown.items()))
    elif args.command == "rotate":
        plaintext, record = await rotate_key(store, args.ref, pepper=pepper, grace=args.grace)
        if args.json:
            print(json.dumps({"key": plaintext, **_public(record, now)}))
        else:
            print(plaintext)
            until = _iso(record.previous_valid_until)
            print(f"key_id: {record.key_id}  name: {record.name}  old secret: "
                  + (f"valid until {until}" if until else "refused from now"))
            print("Save this key now: it is not stored and cannot be shown again.", file=sys.stderr)
    elif args.command == "usage":
        await _usage(args, stores)
    elif args.command == "list":
        records = await store.list_all()
        if args.json:
            print(json.dumps([_public(r, now) for r in records], indent=2))
        else:
            print(_table(records, now))
    else:
        changed = await (
            store.delete(args.ref)
            if args.command == "delete"
            else store.set_state(args.ref, KeyState.DISABLED if args.command == "disable" else KeyState.ACTIVE)
        )
        if changed is None:
            raise KeyNotFound(args.ref)
        print(f"{args.command}d key {changed.name} ({changed.key_id})")
    return EXIT_OK


_USAGE_COLUMNS = {
    "requests": "REQUESTS", "failed_requests": "FAILED", "input_tokens": "INPUT", "output_tokens": "OUTPUT",
    "cache_read_input_tokens": "CACHE_READ", "cache_creation_input_tokens": "CACHE_WRITE",
    "reasoning_tokens": "REASONING", "cost_micro_usd": "COST_USD", "unpriced_requests": "UNPRICED",
}


def _dollars(micro: int) -> str:
    return f"{Decimal(micro) / 1_000_000:.6f}"


def _usage_totals(summary: UsageSummary) -> dict[str, Any]:
    totals: dict[str, Any] = {name: getattr(summary, name) for name in SUMMARY_TOTALS}
    totals["cost_usd"] = _dollars(summary.cost_micro_usd)
    return totals


async def _usage(args: argparse.Namespace, stores: Stores) -> None:
    """Prints one key's usage totals, one row per day, model or account, and their sum."""
    record = await stores.keys.get(args.ref)
    if record is None and not KEY_ID_PATTERN.fullmatch(args.ref):  # a deleted key's usage stays in the ledger
        raise KeyNotFound(args.ref)
    key_id, name = (record.key_id, record.name) if record is not None else (args.ref, None)
    by = Dimension(args.by)
    rows = await stores.ledger.summary(key_id=key_id, since=args.since, until=args.until, by=[by])
    total = UsageSummary(**{field: sum(getattr(row, field) for row in rows) for field in SUMMARY_TOTALS})
    fields = DIMENSION_FIELDS[by]
    if args.json:
        print(json.dumps({
            "key_id": key_id, "name": name, "since": _iso(args.since), "until": _iso(args.until), "by": by.value,
            "rows": [{**{field: str(getattr(row, field)) for field in fields}, **_usage_totals(row)} for row in rows],
            "total": _usage_totals(total),
        }, indent=2))
        return
    span = " ".join(f"{word} {_iso(bound)}" for word, bound in (("from", args.since), ("until", args.until)) if bound)
    print(f"usage of key {name or '(deleted)'} ({key_id}), {span or 'all time'}, by {by.value} (UTC)")

    def numbers(summary: UsageSummary) -> list[str]:
        return [_dollars(summary.cost_micro_usd) if column == "cost_micro_usd" else str(getattr(summary, column))
                for column in _USAGE_COLUMNS]

    table = [[field.upper() for field in fields] + list(_USAGE_COLUMNS.values())]
    table += [[str(getattr(row, field)) for field in fields] + numbers(row) for row in rows]
    table.append(["TOTAL"] + [""] * (len(fields) - 1) + numbers(total))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = [cell.ljust(w) if i < len(fields) else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    config = auth_settings.load()
    if args.db and args.database_url:
        parser.error("give --db (SQLite) or --database-url (PostgreSQL), not both")
    if args.database_url or args.db:
        database_url, db_path = args.database_url or "", args.db or ""
    else:  # the service's own settings
        database_url, db_path = config.database_url, config.db_path
    try:
        return asyncio.run(_run(args, database_url, db_path, config.key_pepper))
    except AuthError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return EXIT_CODES.get(type(exc), EXIT_USAGE)


if __name__ == "__main__":
    sys.exit(main())
