"""What an Anthropic Messages request needs that other formats may leave out, in one place.

- `max_tokens` is required by Anthropic and optional elsewhere: a request without a limit gets
  `DEFAULT_MAX_TOKENS` (documented in the README), raised to fit a thinking budget.
- OpenAI's `reasoning_effort` / Responses' `reasoning.effort` become `thinking: {type: enabled,
  budget_tokens}` with the budgets below (Anthropic's minimum budget is 1,024 tokens); `none`/`minimal`
  turn thinking off.
"""

DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}
# Output room kept above a thinking budget when `max_tokens` is derived from it.
ANSWER_ROOM = 4096


def thinking_for_effort(effort: str | None) -> dict[str, object] | None:
    """The Anthropic `thinking` object for an OpenAI reasoning effort; None for no thinking."""
    if effort is None or effort in ("none", "minimal"):
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def effort_for_budget(budget: int) -> str:
    """The OpenAI reasoning effort closest to an Anthropic thinking budget."""
    for effort, limit in THINKING_BUDGETS.items():
        if budget <= limit:
            return effort
    return "xhigh"


def max_tokens_with(thinking: dict[str, object] | None, asked: int | None) -> int:
    """`max_tokens` for a request: what the client asked, else the default, always above the budget."""
    limit = asked if asked is not None else DEFAULT_MAX_TOKENS
    budget = thinking.get("budget_tokens") if thinking else None
    if isinstance(budget, int) and limit <= budget:
        limit = budget + ANSWER_ROOM
    return limit
