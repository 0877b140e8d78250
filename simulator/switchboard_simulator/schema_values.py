"""Values that conform to a schema: tool-call arguments and JSON-mode answers for every vendor.

`value_for` reads JSON Schema and Gemini's OpenAPI-subset ``Schema`` (type names in either case):
``const``/``enum[0]`` when given, the first non-null ``anyOf``/``oneOf``/``allOf`` branch, non-empty
strings, numbers within ``minimum``/``maximum`` (and the exclusive bounds), ``true`` for booleans, objects
with every property (`arguments_for`: only the required ones when ``required`` is given), arrays with
``minItems`` (at least one) items. Nesting deeper than `MAX_DEPTH` gives empty objects and arrays.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 8
STRING = "sim"


def _bound(schema: dict[str, Any], key: str) -> float | None:
    value = schema.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):  # the OpenAPI subset prints int64 bounds as strings
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    """1, or inside ``minimum``/``maximum`` (and the exclusive bounds) when 1 is not."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    ex_low, ex_high = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
    if integer:  # the closed integer range
        lows = [math.ceil(low)] if low is not None else []
        highs = [math.floor(high)] if high is not None else []
        if ex_low is not None:
            lows.append(math.floor(ex_low) + 1)
        if ex_high is not None:
            highs.append(math.ceil(ex_high) - 1)
        value = 1
        if lows and value < max(lows):
            value = max(lows)
        if highs and value > min(highs):
            value = min(highs)
        return value

    def fits(v: float) -> bool:
        return ((low is None or v >= low) and (high is None or v <= high)
                and (ex_low is None or v > ex_low) and (ex_high is None or v < ex_high))
    bottoms = [v for v in (low, ex_low) if v is not None]
    tops = [v for v in (high, ex_high) if v is not None]
    if fits(1):
        return 1
    if bottoms and tops:
        return (max(bottoms) + min(tops)) / 2
    if bottoms:
        return max(bottoms) + 1
    return min(tops) - 1 if tops else 1


def value_for(schema: Any, depth: int = 0) -> Any:
    """A value conforming to `schema` (see the module docstring)."""
    if not isinstance(schema, dict):
        return STRING
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "any_of", "oneOf", "one_of", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if isinstance(o, dict)
                           and str(o.get("type", "")).lower() != "null"), options[0])
            return value_for(chosen, depth)
    properties = schema.get("properties")
    kind = schema.get("type", "object" if isinstance(properties, dict) else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "string")
    kind = str(kind).lower()
    if kind == "object":
        if not isinstance(properties, dict) or depth >= MAX_DEPTH:
            return {}
        return {name: value_for(sub, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict) or depth >= MAX_DEPTH:
            return []
        low = _bound(schema, "minItems") or _bound(schema, "min_items") or 1
        return [value_for(items, depth + 1) for _ in range(max(1, int(low)))]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return STRING


def arguments_for(schema: Any) -> dict[str, Any]:
    """Tool-call arguments: a value for each required parameter (every parameter when none is marked)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    names = [name for name in required if name in properties] if isinstance(required, list) else list(properties)
    return {name: value_for(properties[name]) for name in names}
