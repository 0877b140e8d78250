"""What a request cost: list prices per model, and the arithmetic from a usage record to micro-dollars.

Prices are USD per million tokens (the unit every vendor publishes), so a token count times its price is
already micro-dollars: the cost is the sum of `tokens × price` over the token kinds, computed in
`decimal.Decimal` and rounded half-up to a whole micro-dollar once, at the end.

Which tokens a record holds (the edge normalises every vendor's report the same way before it reaches the
ledger, `services/edge/switchboard_edge/usage.py`; tests in `tests/edge/test_usage.py`, `test_taps.py`,
`test_gemini.py`), and so how each is billed, exactly once:

- `input_tokens` is the input neither read from nor written to a cache, on every platform. Anthropic's
  `input_tokens` (Claude platforms and Bedrock) already excludes cache reads and writes; OpenAI's
  `prompt_tokens` (chat: openai, azure-openai) and Responses' `input_tokens` (openai-responses, also the
  ChatGPT/Codex backend) include `cached_tokens`, and Gemini's `promptTokenCount` includes
  `cachedContentTokenCount`, so the edge subtracts the cached part (`from_openai`, `from_responses`,
  `from_gemini`). Billed at the input price.
- `cache_read_input_tokens`: Anthropic's cache reads, OpenAI's and Responses' `cached_tokens`, Gemini's
  `cachedContentTokenCount`. Billed at the cache-read price.
- `cache_creation_input_tokens`: cache writes, reported by Anthropic (and Bedrock) only. The part in
  `cache_creation_1h_input_tokens` is billed at the 1-hour write price, the rest (the 5-minute part, and
  all of it when the vendor gave no split) at the 5-minute write price.
- `output_tokens` includes the reasoning on every platform: OpenAI's `completion_tokens` and Responses'
  `output_tokens` include `reasoning_tokens`, Anthropic's `output_tokens` includes thinking, and the edge
  adds Gemini's `thoughtsTokenCount` (separate from `candidatesTokenCount` on the wire) into it. Billed at
  the output price, so reasoning is billed at the output price and `reasoning_tokens` (a part of
  `output_tokens`) is never billed again. A record whose reasoning exceeds its output breaks that rule
  and is refused (ValueError), as is one whose 5-minute and 1-hour writes exceed its cache writes.

A long-context tier (Anthropic's Sonnet 4/4.5 with the 1M window above 200k, Gemini 2.5 Pro above 200k,
OpenAI's gpt-5.5 above 272k) prices the whole request at the tier's prices when its prompt, `input +
cache reads + cache writes`, is above the tier's threshold.

A model without a price costs None, never a guess; so does a record with tokens of a kind its price
lacks (cache writes on a model priced without a cache-write price). Prices are looked up by (platform,
model), exact names first, then glob patterns (`fnmatch`, case-sensitive) in the order written. The
packaged `prices.yaml` holds the defaults; `load_prices` lays a file in the same format over them, and
an entry of that file wins over every default it matches. Which model name to price is the caller's
choice: the name the vendor was asked for (the ledger's `upstream_model`, where set) is what it bills.
"""

import dataclasses
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from importlib import resources
from typing import Any, Protocol

import yaml

from switchboard_common import platforms

_PACKAGE = "switchboard_auth"
DEFAULTS_RESOURCE = "prices.yaml"  # package data, beside this module
_RATE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
_ENTRY_FIELDS = frozenset({"platforms", "models", *_RATE_FIELDS, "long_context"})
_TIER_FIELDS = frozenset({"above_input_tokens", *_RATE_FIELDS})
_GLOB_CHARACTERS = frozenset("*?[")


class PriceFileError(ValueError):
    """A price file that cannot be used; `problems` lists every one found, each with where it is."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class TokenCounts(Protocol):
    """The token counts of one request, as `usage.UsageEntry` (and the edge's `Usage`) hold them."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_read_input_tokens(self) -> int: ...
    @property
    def cache_creation_input_tokens(self) -> int: ...
    @property
    def cache_creation_5m_input_tokens(self) -> int: ...
    @property
    def cache_creation_1h_input_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class LongContext:
    """Prices for the whole request once its prompt has more than `above_input_tokens` tokens."""

    above_input_tokens: int
    price: "Price"


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. A cache price of None: the vendor publishes none (it reports no such tokens)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    long_context: LongContext | None = None

    def for_prompt(self, prompt_tokens: int) -> "Price":
        """The prices that apply to a request whose prompt has `prompt_tokens` tokens."""
        tier = self.long_context
        return tier.price if tier is not None and prompt_tokens > tier.above_input_tokens else self


def _check_counts(tokens: TokenCounts) -> None:
    counts = (tokens.input_tokens, tokens.output_tokens, tokens.cache_read_input_tokens,
              tokens.cache_creation_input_tokens, tokens.cache_creation_5m_input_tokens,
              tokens.cache_creation_1h_input_tokens, tokens.reasoning_tokens)
    if min(counts) < 0:
        raise ValueError("token counts cannot be negative")
    if tokens.cache_creation_5m_input_tokens + tokens.cache_creation_1h_input_tokens > \
            tokens.cache_creation_input_tokens:
        raise ValueError("more 5-minute and 1-hour cache writes than cache writes in all")
    if tokens.reasoning_tokens > tokens.output_tokens:
        raise ValueError("reasoning tokens are part of output tokens and cannot exceed them")


def price_micro_usd(price: Price, tokens: TokenCounts) -> int | None:
    """The cost of `tokens` at `price` in whole micro-dollars (half-up), or None if a needed price is missing."""
    _check_counts(tokens)
    prompt = tokens.input_tokens + tokens.cache_read_input_tokens + tokens.cache_creation_input_tokens
    rates = price.for_prompt(prompt)
    one_hour = tokens.cache_creation_1h_input_tokens
    five_minutes = tokens.cache_creation_input_tokens - one_hour  # no split given: all of it
    billed: tuple[tuple[int, Decimal | None], ...] = (
        (tokens.input_tokens, rates.input),
        (tokens.output_tokens, rates.output),  # reasoning included
        (tokens.cache_read_input_tokens, rates.cache_read),
        (five_minutes, rates.cache_write_5m),
        (one_hour, rates.cache_write_1h),
    )
    with localcontext() as context:
        context.prec = 60  # exact for any count and price a file can hold
        total = Decimal(0)
        for count, rate in billed:
            if count == 0:
                continue
            if rate is None:
                return None
            total += count * rate  # tokens × USD per million tokens = micro-dollars
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def is_glob(pattern: str) -> bool:
    return not _GLOB_CHARACTERS.isdisjoint(pattern)


class PriceTable:
    """Prices by (platform, model): exact names first, then globs in the order given; then the table beneath."""

    def __init__(self, entries: Iterable[tuple[str, str, Price]] = (), beneath: "PriceTable | None" = None) -> None:
        self._exact: dict[tuple[str, str], Price] = {}
        self._globs: dict[str, list[tuple[str, Price]]] = {}
        self._beneath = beneath
        seen: set[tuple[str, str]] = set()
        for platform, pattern, price in entries:
            if (platform, pattern) in seen:
                raise ValueError(f"{platform} {pattern!r} is priced twice")
            seen.add((platform, pattern))
            if is_glob(pattern):
                self._globs.setdefault(platform, []).append((pattern, price))
            else:
                self._exact[(platform, pattern)] = price

    def over(self, beneath: "PriceTable") -> "PriceTable":
        """This table's entries laid over `beneath`: where both price a model, this table wins."""
        table = PriceTable(beneath=beneath if self._beneath is None else self._beneath.over(beneath))
        table._exact, table._globs = self._exact, self._globs
        return table

    def lookup(self, platform: str, model: str) -> Price | None:
        price = self._exact.get((platform, model))
        if price is not None:
            return price
        for pattern, price in self._globs.get(platform, ()):
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return self._beneath.lookup(platform, model) if self._beneath is not None else None


def cost_micro_usd(table: PriceTable, platform: str, model: str, tokens: TokenCounts) -> int | None:
    """What `tokens` on `model` at `platform` cost, in whole micro-dollars; None when no price is known."""
    price = table.lookup(platform, model)
    return None if price is None else price_micro_usd(price, tokens)


# ------------------------------------------------------------------------------------------ price files


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key written twice in one mapping instead of keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode) and key.value != "<<"]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise yaml.constructor.ConstructorError(None, None, f"key {twice[0]!r} written twice", node.start_mark)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable model name or fnmatch glob, or None."""
    if not pattern or pattern != pattern.strip() or any(ch.isspace() for ch in pattern):
        return "a model name or glob cannot be empty or hold whitespace"
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":  # fnmatch's rules: a ']' first in the class (after an optional '!') is literal
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                return "'[' opens a character class that is never closed (fnmatch would match a literal '[')"
            i = close
        i += 1
    try:
        re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        return f"not a valid glob ({exc})"
    return None


def _amount(value: Any, where: str, problems: list[str]) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.append(f"{where}: expected a price in USD per million tokens, got {value!r}")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where}: {value!r} is not a price")
        return None
    try:
        amount = Decimal(str(value).strip())  # str(): the number as written, not its binary approximation
    except InvalidOperation:
        problems.append(f"{where}: {value!r} is not a number")
        return None
    if not amount.is_finite():
        problems.append(f"{where}: {value!r} is not a price")
        return None
    if amount < 0:
        problems.append(f"{where}: a price cannot be negative ({value!r})")
        return None
    return amount


def _rates(raw: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Decimal] | None:
    """The rate fields of an entry or tier; None if a required one is missing or any is bad."""
    before = len(problems)
    rates: dict[str, Decimal] = {}
    for field in _RATE_FIELDS:
        if field not in raw:
            if field in ("input", "output"):
                problems.append(f"{where}: '{field}' is required")
            continue
        amount = _amount(raw[field], f"{where}.{field}", problems)
        if amount is not None:
            rates[field] = amount
    return rates if len(problems) == before else None


def _price(rates: Mapping[str, Decimal], tier: LongContext | None = None) -> Price:
    return Price(input=rates["input"], output=rates["output"], cache_read=rates.get("cache_read"),
                 cache_write_5m=rates.get("cache_write_5m"), cache_write_1h=rates.get("cache_write_1h"),
                 long_context=tier)


def _long_context(raw: Any, base: Mapping[str, Decimal] | None, where: str,
                  problems: list[str]) -> LongContext | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping of above_input_tokens and prices")
        return None
    for field in sorted(set(raw) - _TIER_FIELDS, key=str):
        problems.append(f"{where}: unknown field {field!r}")
    threshold = raw.get("above_input_tokens")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        problems.append(f"{where}.above_input_tokens: expected a positive whole number of tokens, got {threshold!r}")
        threshold = None
    rates = _rates(raw, where, problems)
    if base is not None and rates is not None:
        for field in _RATE_FIELDS:
            if field in base and field not in rates:
                problems.append(f"{where}: '{field}' is priced below the threshold, so it must be priced above it")
    if threshold is None or rates is None or set(raw) - _TIER_FIELDS:
        return None
    return LongContext(threshold, _price(rates))


def _names(raw: Any, where: str, problems: list[str]) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(item, str) for item in raw):
        problems.append(f"{where}: expected a non-empty list of names")
        return []
    return list(raw)


def _entries(document: Any, problems: list[str]) -> list[tuple[str, str, Price]]:
    if not isinstance(document, Mapping) or "prices" not in document:
        problems.append("expected a mapping with a 'prices' list")
        return []
    for field in sorted(set(document) - {"prices"}, key=str):
        problems.append(f"unknown top-level field {field!r}")
    if not isinstance(document["prices"], list):
        problems.append("prices: expected a list of entries")
        return []
    entries: list[tuple[str, str, Price]] = []
    where_seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(document["prices"]):
        where = f"prices[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a mapping")
            continue
        before = len(problems)
        for field in sorted(set(raw) - _ENTRY_FIELDS, key=str):
            problems.append(f"{where}: unknown field {field!r}")
        entry_platforms = _names(raw.get("platforms"), f"{where}.platforms", problems)
        for platform in entry_platforms:
            if not platforms.is_platform(platform):
                problems.append(f"{where}.platforms: {platform!r} is not one of {', '.join(platforms.ALL)}")
        models = _names(raw.get("models"), f"{where}.models", problems)
        for position, model in enumerate(models):
            problem = _glob_problem(model)
            if problem:
                problems.append(f"{where}.models[{position}]: {model!r}: {problem}")
        rates = _rates(raw, where, problems)
        tier = None
        if "long_context" in raw:
            tier = _long_context(raw["long_context"], rates, f"{where}.long_context", problems)
        if len(problems) > before or rates is None:
            continue
        price = _price(rates, tier)
        for platform in entry_platforms:
            for model in models:
                earlier = where_seen.get((platform, model))
                if earlier is not None:
                    problems.append(f"{where}: {platform} {model!r} is already priced by {earlier}")
                else:
                    where_seen[(platform, model)] = where
                    entries.append((platform, model, price))
    return entries


def parse_prices(text: str, source: str) -> PriceTable:
    """The table a price file's text describes; PriceFileError names every problem in it."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise PriceFileError(source, [f"not valid YAML: {exc}"]) from None
    problems: list[str] = []
    entries = _entries(document, problems)
    if problems:
        raise PriceFileError(source, problems)
    return PriceTable(entries)


def default_prices() -> PriceTable:
    """The packaged list prices (`switchboard_auth/prices.yaml`)."""
    text = resources.files(_PACKAGE).joinpath(DEFAULTS_RESOURCE).read_text(encoding="utf-8")
    return parse_prices(text, f"{_PACKAGE}/{DEFAULTS_RESOURCE}")


def load_prices(path: str | None) -> PriceTable:
    """The packaged prices, with the entries of the file at `path` (if any) laid over them.

    Every problem in the file is reported at once (PriceFileError), as is a file that cannot be read."""
    defaults = default_prices()
    if not path:
        return defaults
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceFileError(path, [f"cannot be read: {exc}"]) from None
    return parse_prices(text, path).over(defaults)
