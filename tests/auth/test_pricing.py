"""Costs in micro-dollars (pricing.py) against the vendors' published prices, worked out by hand.

Prices are USD per million tokens, so `tokens × price` is micro-dollars (µ$): 1,200 input tokens at $3/MTok
cost 3,600 µ$. Vendor usage objects go through the edge's own readers first (switchboard_edge.usage,
upstream/gemini.py, upstream/openai_responses.py), so these tests also hold the edge's normalisation to what
the arithmetic assumes: cached input split out of the input, reasoning inside the output.
"""

import fnmatch
import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

import switchboard_stack.__main__ as stack_main
from switchboard_auth import settings
from switchboard_auth.pricing import (
    Price,
    PriceFileError,
    PriceTable,
    cost_micro_usd,
    load_prices,
    price_micro_usd,
)
from switchboard_auth.usage import UsageEntry
from switchboard_common import platforms
from switchboard_edge.upstream.bedrock import bedrock_model_id
from switchboard_edge.upstream.gemini import from_gemini
from switchboard_edge.upstream.openai_responses import from_responses
from switchboard_edge.usage import Usage, from_openai, merge_anthropic
from switchboard_simulator import defaults as simulator_defaults
from switchboard_simulator.vendors.gemini import KNOWN_MODELS as GEMINI_MODELS
from switchboard_simulator.vendors.responses_format import SNAPSHOTS as OPENAI_SNAPSHOTS
from switchboard_stack.launcher import demo_accounts

DEFAULTS = load_prices(None)


def entry(platform: str, model: str, **tokens: int) -> UsageEntry:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    return UsageEntry(request_id="r1", key_id="k1", platform=platform, model=model, started_at=now,
                      recorded_at=now, **tokens)


# ------------------------------------------------------------------------------------------ golden costs


def test_cache_heavy_claude_request_bills_reads_and_both_write_lifetimes() -> None:
    # Claude Sonnet 4.5 on the Claude API: $3 input, $15 output, $0.30 cache read, $3.75 5-minute write,
    # $6 1-hour write. Prompt 1,200 + 150,000 + 40,000 = 191,200 tokens: below the 200k long-context line.
    usage = Usage()
    merge_anthropic(usage, {"input_tokens": 1_200, "cache_read_input_tokens": 150_000,
                            "cache_creation_input_tokens": 40_000, "output_tokens": 3_400,
                            "cache_creation": {"ephemeral_5m_input_tokens": 10_000,
                                               "ephemeral_1h_input_tokens": 30_000}})
    #   1,200 × 3      =   3,600
    #   3,400 × 15     =  51,000
    # 150,000 × 0.30   =  45,000
    #  10,000 × 3.75   =  37,500
    #  30,000 × 6      = 180,000
    #                    317,100 µ$ = $0.3171
    assert cost_micro_usd(DEFAULTS, "claude-console", "claude-sonnet-4-5-20250929", usage) == 317_100


@pytest.mark.parametrize(
    ("split_1h", "expected"),
    [
        # Claude Opus 4.5: $5 input, $25 output, $6.25 5-minute write, $10 1-hour write.
        # No split: 10 × 5 + 20 × 25 + 2,000 × 6.25 = 50 + 500 + 12,500 = 13,050
        pytest.param(0, 13_050, id="no-split-bills-the-5-minute-price"),
        # 500 of the 2,000 written for an hour: 50 + 500 + 1,500 × 6.25 + 500 × 10 = 550 + 9,375 + 5,000 = 14,925
        pytest.param(500, 14_925, id="1h-part-at-the-1-hour-price-rest-at-5-minutes"),
    ],
)
def test_cache_writes_without_a_full_split(split_1h: int, expected: int) -> None:
    tokens = entry("claude-console", "claude-opus-4-5-20251101", input_tokens=10, output_tokens=20,
                   cache_creation_input_tokens=2_000, cache_creation_1h_input_tokens=split_1h)
    assert cost_micro_usd(DEFAULTS, "claude-console", "claude-opus-4-5-20251101", tokens) == expected


def test_openai_cached_input_is_not_billed_twice() -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output. prompt_tokens 2,006 include the 1,920 cached.
    usage = from_openai({"prompt_tokens": 2_006, "completion_tokens": 300, "total_tokens": 2_306,
                         "prompt_tokens_details": {"cached_tokens": 1_920}})
    #    86 × 2.50 =   215   (2,006 − 1,920 uncached)
    # 1,920 × 1.25 = 2,400
    #   300 × 10   = 3,000
    #                5,615 µ$   (billing prompt_tokens in full as well would make it 10,415)
    assert cost_micro_usd(DEFAULTS, "openai", "gpt-4o", usage) == 5_615
    assert cost_micro_usd(DEFAULTS, "azure-openai", "gpt-4o", usage) == 5_615


def test_gemini_above_200k_prices_the_whole_request_at_the_long_context_tier() -> None:
    # Gemini 2.5 Pro above 200k prompt tokens: $2.50 input, $0.25 cached, $15 output (thinking included).
    # promptTokenCount 250,000 includes 50,000 cached; 200,000 uncached alone would not cross the line,
    # the prompt (uncached + cached) does.
    usage = from_gemini({"promptTokenCount": 250_000, "cachedContentTokenCount": 50_000,
                         "candidatesTokenCount": 2_000, "thoughtsTokenCount": 6_000, "totalTokenCount": 258_000})
    # 200,000 × 2.50 = 500,000
    #  50,000 × 0.25 =  12,500
    #   8,000 × 15   = 120,000   (2,000 candidates + 6,000 thoughts)
    #                  632,500 µ$
    assert cost_micro_usd(DEFAULTS, "gemini", "gemini-2.5-pro", usage) == 632_500


def test_gemini_at_exactly_200k_stays_at_the_base_prices() -> None:
    # Base: $1.25 input, $0.125 cached, $10 output. 150,000 + 50,000 = 200,000: not above the line.
    usage = from_gemini({"promptTokenCount": 200_000, "cachedContentTokenCount": 50_000,
                         "candidatesTokenCount": 1_000})
    # 150,000 × 1.25 + 50,000 × 0.125 + 1,000 × 10 = 187,500 + 6,250 + 10,000 = 203,750
    assert cost_micro_usd(DEFAULTS, "gemini", "gemini-2.5-pro", usage) == 203_750


def test_reasoning_heavy_request_bills_reasoning_once_at_the_output_price() -> None:
    # o3 through the Responses API: $2 input, $0.50 cached, $8 output. output_tokens 12,000 include the
    # 11,500 reasoning tokens.
    usage = from_responses({"input_tokens": 1_500, "input_tokens_details": {"cached_tokens": 1_024},
                            "output_tokens": 12_000, "output_tokens_details": {"reasoning_tokens": 11_500}})
    assert usage.reasoning_tokens == 11_500
    #    476 × 2    =    952
    #  1,024 × 0.50 =    512
    # 12,000 × 8    = 96,000
    #                 97,464 µ$   (reasoning billed again would add 92,000)
    assert cost_micro_usd(DEFAULTS, "openai-responses", "o3", usage) == 97_464


def test_claude_thinking_is_billed_inside_output() -> None:
    # Claude Haiku 4.5: $1 input, $5 output; thinking_tokens are part of output_tokens.
    usage = Usage()
    merge_anthropic(usage, {"input_tokens": 598, "output_tokens": 92, "output_tokens_details": {"thinking_tokens": 53}})
    # 598 × 1 + 92 × 5 = 598 + 460 = 1,058
    assert cost_micro_usd(DEFAULTS, "claude-official", "claude-haiku-4-5-20251001", usage) == 1_058


def test_claude_sonnet_long_context_tier() -> None:
    # Sonnet 4.5 with the 1M window above 200k: $6 input, $0.60 cache read, $22.50 output.
    # Prompt 150,000 + 60,000 = 210,000.
    tokens = entry("claude-console", "claude-sonnet-4-5", input_tokens=150_000, cache_read_input_tokens=60_000,
                   output_tokens=1_000)
    # 150,000 × 6 + 60,000 × 0.60 + 1,000 × 22.50 = 900,000 + 36,000 + 22,500 = 958,500
    assert cost_micro_usd(DEFAULTS, "claude-console", "claude-sonnet-4-5", tokens) == 958_500


def test_gpt_5_5_above_272k() -> None:
    # gpt-5.5 above 272K prompt tokens: $10 input, $1 cached, $45 output. Prompt 100,000 + 180,000 = 280,000.
    tokens = entry("openai-responses", "gpt-5.5", input_tokens=100_000, cache_read_input_tokens=180_000,
                   output_tokens=5_000, reasoning_tokens=4_000)
    # 100,000 × 10 + 180,000 × 1 + 5,000 × 45 = 1,000,000 + 180,000 + 225,000 = 1,405,000
    assert cost_micro_usd(DEFAULTS, "openai-responses", "gpt-5.5", tokens) == 1_405_000


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # A bare name goes through the region's geographic profile (us.anthropic.…): 10% over list for
        # Sonnet 4.5: 1,000 × 3.30 + 1,000 × 16.50 = 3,300 + 16,500 = 19,800
        pytest.param("claude-sonnet-4-5-20250929", 19_800, id="bare-name-geographic"),
        pytest.param("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 19_800, id="us-profile"),
        # Global profile at list: 1,000 × 3 + 1,000 × 15 = 18,000
        pytest.param("global.anthropic.claude-sonnet-4-5-20250929-v1:0", 18_000, id="global-profile"),
        # Sonnet 4 has one price everywhere: 18,000
        pytest.param("claude-sonnet-4-20250514", 18_000, id="sonnet-4-bare"),
        pytest.param("us.anthropic.claude-sonnet-4-20250514-v1:0", 18_000, id="sonnet-4-us-profile"),
    ],
)
def test_bedrock_endpoint_prices(model: str, expected: int) -> None:
    tokens = entry("bedrock", model, input_tokens=1_000, output_tokens=1_000)
    assert cost_micro_usd(DEFAULTS, "bedrock", model, tokens) == expected


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        # gpt-5-nano: $0.05 input, $0.005 cached, $0.40 output.
        # 10 × 0.05 = 0.5 µ$ → 1 (half-up; half-even would give 0)
        pytest.param({"input_tokens": 10}, 1, id="half-rounds-up"),
        # 50 × 0.05 = 2.5 µ$ → 3 (half-even would give 2)
        pytest.param({"input_tokens": 50}, 3, id="two-and-a-half-rounds-up"),
        # 5 × 0.05 + 50 × 0.005 + 1 × 0.40 = 0.25 + 0.25 + 0.40 = 0.90 → 1 (each part rounded alone: 0)
        pytest.param({"input_tokens": 5, "cache_read_input_tokens": 50, "output_tokens": 1}, 1,
                     id="rounded-once-at-the-end"),
        # 1 × 0.40 = 0.4 → 0
        pytest.param({"output_tokens": 1}, 0, id="below-half-rounds-down"),
        pytest.param({}, 0, id="nothing-costs-nothing"),
    ],
)
def test_rounding(tokens: dict[str, int], expected: int) -> None:
    assert cost_micro_usd(DEFAULTS, "openai", "gpt-5-nano", entry("openai", "gpt-5-nano", **tokens)) == expected


@pytest.mark.parametrize(
    ("platform", "model", "tokens"),
    [
        pytest.param("openai", "gpt-unknown-9", {"input_tokens": 5}, id="unknown-model"),
        pytest.param("gemini", "gpt-4o", {"input_tokens": 5}, id="known-model-other-platform"),
        pytest.param("openai", "gpt-4o-2024-05-13", {"input_tokens": 5}, id="snapshot-priced-differently"),
        pytest.param("bedrock", "arn:aws:bedrock:us-east-1:1:application-inference-profile/x", {"input_tokens": 5},
                     id="bedrock-arn"),
        pytest.param("openai", "gpt-4o", {"input_tokens": 5, "cache_creation_input_tokens": 5},
                     id="token-kind-without-a-price"),
    ],
)
def test_no_price_known_is_none(platform: str, model: str, tokens: dict[str, int]) -> None:
    assert cost_micro_usd(DEFAULTS, platform, model, entry(platform, model, **tokens)) is None


@pytest.mark.parametrize(
    "tokens",
    [
        pytest.param({"cache_creation_input_tokens": 10, "cache_creation_5m_input_tokens": 8,
                      "cache_creation_1h_input_tokens": 5}, id="split-larger-than-the-writes"),
        pytest.param({"output_tokens": 10, "reasoning_tokens": 11}, id="reasoning-beyond-output"),
        pytest.param({"input_tokens": -1}, id="negative-count"),
    ],
)
def test_inconsistent_counts_are_refused(tokens: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        cost_micro_usd(DEFAULTS, "claude-console", "claude-haiku-4-5", entry("claude-console", "x", **tokens))


def test_exact_names_win_over_globs_and_globs_go_in_order() -> None:
    cheap, dear, exact = (Price(Decimal(n), Decimal(n)) for n in ("1", "2", "3"))
    table = PriceTable([("openai", "gpt-*", cheap), ("openai", "gpt-4*", dear), ("openai", "gpt-4o", exact)])
    assert table.lookup("openai", "gpt-4o") is exact
    assert table.lookup("openai", "gpt-4.1") is cheap  # the first glob that matches, not the most specific
    assert table.lookup("openai", "GPT-4.1") is None  # case-sensitive, as the router matches models
    with pytest.raises(ValueError):
        PriceTable([("openai", "gpt-4o", cheap), ("openai", "gpt-4o", dear)])


def test_price_micro_usd_without_a_table() -> None:
    price = Price(Decimal("0.8"), Decimal("4"), cache_read=Decimal("0.08"))
    # 1,000 × 0.8 + 100 × 4 + 500 × 0.08 = 800 + 400 + 40 = 1,240
    assert price_micro_usd(price, entry("bedrock", "m", input_tokens=1_000, output_tokens=100,
                                        cache_read_input_tokens=500)) == 1_240


# ------------------------------------------------------------------------------------------ configuration

OVERRIDE = """
prices:
  - platforms: [claude-ccr]          # one price for everything the compatible upstream serves
    models: ["claude-*"]
    input: 1
    output: 2
    cache_read: 0.1
    cache_write_5m: 1.25
    cache_write_1h: 2
  - platforms: [openai]
    models: [gpt-4o]                 # replaces the default
    input: 1
    output: 4
    cache_read: 0.5
  - platforms: [openai]
    models: [ft:gpt-4.1:acme:tuned]  # adds a model
    input: 3
    output: 12
"""


def test_a_prices_file_replaces_and_adds_to_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(OVERRIDE)
    assert settings.load({"SWITCHBOARD_AUTH_PRICES_FILE": str(path)}).prices_file == str(path)
    table = load_prices(settings.load({"SWITCHBOARD_AUTH_PRICES_FILE": str(path)}).prices_file)
    tokens = entry("x", "y", input_tokens=1_000, output_tokens=1_000)
    # The file's glob wins over the default's exact name on claude-ccr: 1,000 × 1 + 1,000 × 2 = 3,000
    assert cost_micro_usd(table, "claude-ccr", "claude-sonnet-4-20250514", tokens) == 3_000
    # ... and nowhere else: claude-console keeps $3/$15: 3,000 + 15,000 = 18,000
    assert cost_micro_usd(table, "claude-console", "claude-sonnet-4-20250514", tokens) == 18_000
    # Replaced on openai (1,000 × 1 + 1,000 × 4 = 5,000), unchanged on azure-openai (2,500 + 10,000 = 12,500)
    assert cost_micro_usd(table, "openai", "gpt-4o", tokens) == 5_000
    assert cost_micro_usd(table, "azure-openai", "gpt-4o", tokens) == 12_500
    # Added: 1,000 × 3 + 1,000 × 12 = 15,000; absent from the defaults
    assert cost_micro_usd(table, "openai", "ft:gpt-4.1:acme:tuned", tokens) == 15_000
    assert cost_micro_usd(DEFAULTS, "openai", "ft:gpt-4.1:acme:tuned", tokens) is None
    # Everything else is the defaults': gemini-2.5-flash 1,000 × 0.30 + 1,000 × 2.50 = 2,800
    assert cost_micro_usd(table, "gemini", "gemini-2.5-flash", tokens) == 2_800


def test_no_prices_file_means_the_defaults() -> None:
    assert settings.load({}).prices_file == ""
    tokens = entry("x", "y", input_tokens=1_000)
    assert cost_micro_usd(load_prices(""), "openai", "gpt-4o", tokens) == 2_500


BROKEN = """
prices:
  - platforms: [openai]
    models: [gpt-4o]
    input: 1
    output: 2
    cach_read: 0.5
  - platforms: [openai]
    models: [gpt-4.1]
    input: -2
    output: 8
  - platforms: [claude-console]
    models: ["claude-[sonnet"]
    input: 3
    output: 15
  - platforms: [openia]
    models: [gpt-5]
    input: 1
    output: 10
  - platforms: [gemini]
    models: [gemini-2.5-pro]
    input: 1.25
  - platforms: [gemini]
    models: [gemini-2.5-flash]
    input: 0.30
    output: 2.50
    cache_read: 0.03
    long_context: {above_input_tokens: 200000, input: 0.6, output: 5}
  - platforms: [openai]
    models: [o3]
    input: 2
    output: 8
  - platforms: [openai]
    models: [o3]
    input: 2
    output: 9
  - platforms: [openai]
    models: [o1]
    input: lots
    output: 60
    long_context: {above_input_tokens: 0, input: 1, output: 1}
"""


def test_every_problem_of_a_prices_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(PriceFileError) as raised:
        load_prices(str(path))
    problems = raised.value.problems
    expected = [
        ("prices[0]", "unknown field 'cach_read'"),
        ("prices[1].input", "cannot be negative"),
        ("prices[2].models[0]", "never closed"),
        ("prices[3].platforms", "'openia' is not one of"),
        ("prices[4]", "'output' is required"),
        ("prices[5].long_context", "'cache_read' is priced below the threshold"),
        ("prices[7]", "already priced by prices[6]"),
        ("prices[8].input", "is not a number"),
        ("prices[8].long_context.above_input_tokens", "positive whole number"),
    ]
    for where, what in expected:
        assert any(problem.startswith(where + ":") and what in problem for problem in problems), (where, problems)
    assert len(problems) == len(expected), problems
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        pytest.param("prices: [\n", "not valid YAML", id="yaml-syntax"),
        pytest.param("", "expected a mapping with a 'prices' list", id="empty-file"),
        pytest.param("prices: []\nversion: 2\n", "unknown top-level field 'version'", id="unknown-top-level"),
        pytest.param("prices:\n  - platforms: [openai]\n    models: [o3]\n    input: 1\n    input: 2\n    output: 8\n",
                     "'input' written twice", id="key-twice"),
        pytest.param("prices:\n  - platforms: [openai]\n    models: ['gpt 4']\n    input: 1\n    output: 8\n",
                     "whitespace", id="whitespace-in-name"),
        pytest.param("prices:\n  - platforms: []\n    models: [o3]\n    input: 1\n    output: 8\n",
                     "non-empty list", id="no-platforms"),
        pytest.param("prices:\n  - platforms: [openai]\n    models: [o3]\n    input: .nan\n    output: 8\n",
                     "is not a price", id="nan"),
    ],
)
def test_prices_file_problems(tmp_path: Path, text: str, what: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceFileError, match=re.escape(what)):
        load_prices(str(path))


def test_a_missing_prices_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot be read"):
        load_prices(str(tmp_path / "absent.yaml"))


# ------------------------------------------------------------------------------------------ the default table


def _default_entries() -> list[dict[str, Any]]:
    text = resources.files("switchboard_auth").joinpath("prices.yaml").read_text(encoding="utf-8")
    entries: list[dict[str, Any]] = yaml.safe_load(text)["prices"]
    return entries


def _rates(raw: dict[str, Any]) -> dict[str, Decimal]:
    return {field: Decimal(str(raw[field])) for field in ("input", "output", "cache_read", "cache_write_5m",
                                                          "cache_write_1h") if field in raw}


def test_claude_cache_prices_follow_anthropics_multipliers() -> None:
    """5-minute writes 1.25x input, 1-hour writes 2x input, reads 0.1x input, in every tier of every Claude price."""
    checked = 0
    for raw in _default_entries():
        if not any(p.startswith("claude-") or p == "bedrock" for p in raw["platforms"]):
            continue
        for rates in (_rates(raw), *([_rates(raw["long_context"])] if "long_context" in raw else [])):
            assert rates["cache_write_5m"] == rates["input"] * Decimal("1.25"), raw["models"]
            assert rates["cache_write_1h"] == rates["input"] * 2, raw["models"]
            assert rates["cache_read"] == rates["input"] * Decimal("0.1"), raw["models"]
            checked += 1
    assert checked >= 20


def test_bedrock_geographic_profiles_cost_a_tenth_more_than_global_ones() -> None:
    tokens = entry("bedrock", "m", input_tokens=1_000_000, output_tokens=1_000_000, cache_read_input_tokens=1_000_000,
                   cache_creation_input_tokens=2_000_000, cache_creation_1h_input_tokens=1_000_000)
    for model in ("claude-opus-4-5-20251101", "claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-sonnet-4-6",
                  "claude-haiku-4-5-20251001"):
        first_party = cost_micro_usd(DEFAULTS, "claude-console", model, tokens)
        assert first_party is not None
        assert cost_micro_usd(DEFAULTS, "bedrock", f"global.anthropic.{model}-v1:0", tokens) == first_party
        geographic = round(first_party * Decimal("1.1"))
        assert cost_micro_usd(DEFAULTS, "bedrock", f"us.anthropic.{model}-v1:0", tokens) == geographic
        assert cost_micro_usd(DEFAULTS, "bedrock", model, tokens) == geographic


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [
        pytest.param("claude-opus-4-6", 5, 25, id="opus-4.6"),
        pytest.param("claude-opus-4-1-20250805", 15, 75, id="opus-4.1"),
        pytest.param("claude-opus-4-20250514", 15, 75, id="opus-4"),
        pytest.param("claude-sonnet-4-6", 3, 15, id="sonnet-4.6"),
        pytest.param("claude-haiku-4-5", 1, 5, id="haiku-4.5"),
        pytest.param("claude-3-7-sonnet-20250219", 3, 15, id="sonnet-3.7"),
        pytest.param("claude-3-5-haiku-20241022", Decimal("0.8"), 4, id="haiku-3.5"),
    ],
)
def test_claude_families_list_prices(model: str, input_price: Decimal, output_price: Decimal) -> None:
    price = DEFAULTS.lookup("claude-console", model)
    assert price is not None and (price.input, price.output) == (input_price, output_price)
    assert DEFAULTS.lookup("claude-official", model) == price


def _pinned(banner: str) -> list[tuple[str, str]]:
    """The "platform,model" pairs the banner suggests."""
    return re.findall(rf'"({"|".join(map(re.escape, platforms.ALL))}),([\w.:-]+)"', banner)


def _demo_model_names() -> set[str]:
    """Every model name the demo stack prints, the simulator's Azure deployments, OpenAI snapshots and Gemini list."""
    banner = Path(stack_main.__file__).read_text(encoding="utf-8")
    names = set(re.findall(r'"model": "([^"]+)"', banner))
    names |= set(re.findall(r"/models/([\w.-]+):", banner))
    names |= {model for _, model in _pinned(banner)}
    assert {"claude-sonnet-4-20250514", "gpt-4o-mini", "gpt-5", "gemini-2.5-flash"} <= names, names
    deployments = simulator_defaults.AZURE_OPENAI_DEPLOYMENTS
    names |= set(deployments) | set(deployments.values())
    names |= set(OPENAI_SNAPSHOTS) | set(OPENAI_SNAPSHOTS.values())
    names |= set(GEMINI_MODELS)
    return names


def test_every_model_the_demo_stack_and_simulator_serve_has_a_price() -> None:
    names = _demo_model_names()
    missing: list[str] = []
    served: dict[str, int] = {}
    for account in demo_accounts("http://127.0.0.1:1"):
        platform, patterns = account["platform"], account["models"]
        for model in sorted(names):
            if not any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns):
                continue
            served[account["name"]] = served.get(account["name"], 0) + 1
            candidates = [model]
            if platform == "bedrock":  # the id the edge sends, which an account's model_mapping may name too
                candidates.append(bedrock_model_id(model, simulator_defaults.BEDROCK_REGION))
            missing += [f"{platform} {name}" for name in candidates if DEFAULTS.lookup(platform, name) is None]
    assert not missing, f"default models without a price in prices.yaml: {missing}"
    # Every demo account (one per platform, two for openai-responses) serves some of these names.
    assert len(served) == len(demo_accounts("http://127.0.0.1:1")), served
    pinned = _pinned(Path(stack_main.__file__).read_text(encoding="utf-8"))
    assert len(pinned) >= 7, pinned
    assert [pair for pair in pinned if DEFAULTS.lookup(*pair) is None] == []
