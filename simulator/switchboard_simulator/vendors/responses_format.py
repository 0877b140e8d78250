"""The Responses API's request side and ``response`` object, shared by the OpenAI API (`openai_responses`)
and the ChatGPT/Codex backend (`codex`); the output items, stream events and compaction answer are in
`responses_output`. Shapes follow vendor-recordings/openai-responses (2026 traffic):

- ids: ``resp_``/``msg_``/``rs_``/``fc_``/``cmp_`` + 50 hex digits: 16 shared by every id of one
  response, ``01``, the unix time in 8 hex digits, 24 random ones; ``call_`` + 24 alphanumerics;
  ``encrypted_content`` is a Fernet token (``gAAAAAB…``) bound to the organisation that made it: its
  32-byte MAC is an HMAC-SHA256 of the rest keyed by the organisation's id, so `encrypted_content_problem`
  finds a ``reasoning`` or ``compaction`` input item made for another organisation (or forged), which the
  vendor refuses (``invalid_encrypted_content``, "The encrypted content gAAA...DQ== could not be verified.
  Reason: Encrypted content could not be decrypted or parsed.", or "… for item cmp_… …" for a compaction
  item with an id);
- the response object: id, object, created_at, status, background, (billing: non-stream only),
  completed_at, error, frequency_penalty, incomplete_details, instructions, max_output_tokens,
  max_tool_calls, model (the dated snapshot), moderation, output, parallel_tool_calls, presence_penalty,
  previous_response_id, prompt_cache_key, prompt_cache_retention, reasoning, safety_identifier,
  service_tier (``auto`` while in progress, ``default`` once done), store, temperature, text,
  tool_choice, tools (function tools normalised: ``strict`` true and ``additionalProperties`` false),
  top_logprobs, top_p, truncation, usage, user, metadata.

What a request earns is deterministic (`make_plan`): reasoning models think (``reasoning_tokens``)
unless the effort is none, minimal or low (as recorded: low effort on a short prompt reports 0); a
summary is streamed when ``reasoning.summary`` asks for one; a function tool is called when
``tool_choice`` requires it, or (``auto``) when the last user message names the tool; after a tool's
output the model answers in text. ``max_output_tokens`` cuts reasoning first, then the text, and makes
the response ``incomplete``. Input tokens are the simulator's estimate over input, instructions and
tools; with ``prompt_cache_key``, `PromptCache` reports a prefix seen before as ``cached_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import string
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import textgen
from ..schema_values import arguments_for

#: Effort → reasoning tokens spent before the answer (none, minimal and low think for 0 tokens).
EFFORT_TOKENS = {"none": 0, "minimal": 0, "low": 0, "medium": 64, "high": 128, "xhigh": 256}
EFFORTS = tuple(EFFORT_TOKENS)
#: Model names the vendor answers with their dated snapshot; others are echoed as sent.
SNAPSHOTS = {
    "gpt-5.5": "gpt-5.5-2026-04-23",
    "gpt-5.2": "gpt-5.2-2025-12-11",
    "gpt-5.1": "gpt-5.1-2025-11-13",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}
#: The current generation: its assistant messages carry ``"phase": "final_answer"`` and its prompt cache is
#: kept 24 hours unless asked otherwise (``prompt_cache_retention: "24h"``), as the gpt-5.5 recordings show.
LATEST_PREFIXES = ("gpt-5.5", "gpt-5.6")
_ALNUM = string.ascii_letters + string.digits
_rng = random.Random()


# --------------------------------------------------------------------------------------------- ids


class IdFactory:
    """The ids of one response: a shared 16-hex-digit stem, then ``01``, the time and 24 random digits."""

    def __init__(self) -> None:
        self.stem = f"{_rng.getrandbits(64):016x}"

    def make(self, prefix: str) -> str:
        return f"{prefix}_{self.stem}01{int(time.time()) & 0xFFFFFFFF:08x}{_rng.getrandbits(96):024x}"


def call_id() -> str:
    return "call_" + "".join(_rng.choices(_ALNUM, k=24))


# ------------------------------------------------------------------------------ encrypted content

#: Fernet's layout: version byte, 8-byte timestamp, 16-byte IV, ciphertext in 16-byte blocks, 32-byte MAC.
_FERNET_VERSION = 0x80
_FERNET_HEAD = 1 + 8 + 16
_MAC_SIZE = 32
#: The vendor's reason for refusing a blob it cannot verify.
UNVERIFIED_REASON = "Encrypted content could not be decrypted or parsed."
#: The input item types whose ``encrypted_content`` the vendor decrypts (and so refuses when it cannot).
ENCRYPTED_ITEM_TYPES = ("reasoning", "compaction")


def _mac(organization: str, signed: bytes) -> bytes:
    return hmac.new(organization.encode(), signed, hashlib.sha256).digest()


def encrypted_content(size: int, organization: str) -> str:
    """A Fernet token (version byte 0x80, 8-byte timestamp, IV, about `size` bytes of ciphertext, 32-byte
    MAC) that only `organization` accepts back: the MAC is an HMAC-SHA256 of the rest keyed by its id."""
    blocks = max(1, size // 16)
    signed = bytes([_FERNET_VERSION]) + int(time.time()).to_bytes(8, "big") + _rng.randbytes(16 + 16 * blocks)
    return base64.urlsafe_b64encode(signed + _mac(organization, signed)).decode()


def encrypted_for(blob: Any, organization: str) -> bool:
    """Whether `blob` is encrypted content `encrypted_content` made for `organization`."""
    if not isinstance(blob, str):
        return False
    try:
        raw = base64.b64decode(blob, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    ciphertext = len(raw) - _FERNET_HEAD - _MAC_SIZE
    if ciphertext < 16 or ciphertext % 16 or raw[0] != _FERNET_VERSION:
        return False
    return hmac.compare_digest(raw[-_MAC_SIZE:], _mac(organization, raw[:-_MAC_SIZE]))


def _abbreviated(blob: Any) -> str:
    text = blob if isinstance(blob, str) else orjson.dumps(blob).decode()
    return f"{text[:4]}...{text[-4:]}"


def encrypted_content_problem(items: Any, organization: str) -> str | None:
    """The vendor's message for the first ``reasoning`` or ``compaction`` input item whose
    ``encrypted_content`` was not made for `organization` (another's, or forged), or None. Items without
    encrypted content (or with null) are not checked."""
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or item.get("type") not in ENCRYPTED_ITEM_TYPES:
            continue
        blob = item.get("encrypted_content")
        if blob is None or encrypted_for(blob, organization):
            continue
        item_id = item.get("id")
        if item["type"] == "compaction" and isinstance(item_id, str) and item_id:
            return f"The encrypted content for item {item_id} could not be verified. Reason: {UNVERIFIED_REASON}"
        return f"The encrypted content {_abbreviated(blob)} could not be verified. Reason: {UNVERIFIED_REASON}"
    return None


# ---------------------------------------------------------------------------------- prompt caching


class PromptCache:
    """Prefixes seen per ``prompt_cache_key``: a request whose input starts like an earlier one (same key)
    reports that prefix's tokens as ``cached_tokens``. Bounded (least recently used prefixes go)."""

    def __init__(self, limit: int = 20000) -> None:
        self.limit = limit
        self._prefixes: OrderedDict[bytes, int] = OrderedDict()

    def lookup_and_store(self, key: str, parts: Sequence[Any]) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=16)
        chars, cached = 0, 0
        for part in parts:
            digest.update(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
            chars += textgen.text_chars(part)
            mark = digest.copy().digest()
            if mark in self._prefixes:
                self._prefixes.move_to_end(mark)
                cached = self._prefixes[mark]
            else:
                self._prefixes[mark] = chars // textgen.CHARS_PER_TOKEN
        while len(self._prefixes) > self.limit:
            self._prefixes.popitem(last=False)
        return cached


# ------------------------------------------------------------------------------------- the request


@dataclass(frozen=True, slots=True)
class Call:
    """A function call the simulated model makes."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one reply needs, decided before the first byte."""

    body: dict[str, Any]
    model: str
    input_tokens: int
    cached_tokens: int
    reasoning: dict[str, Any]
    reasoning_tokens: int
    summary: bool
    encrypted: bool
    call: Call | None
    text_tokens: int
    incomplete: bool
    latest: bool
    organization: str

    @property
    def output_tokens(self) -> int:
        return self.reasoning_tokens + self.text_tokens + (len(argument_pieces(self.call)) if self.call else 0)

    def usage(self) -> dict[str, Any]:
        return usage(self.input_tokens, self.cached_tokens, self.output_tokens, self.reasoning_tokens)


def usage(input_tokens: int, cached: int, output_tokens: int, reasoning: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def snapshot(model: str) -> str:
    return SNAPSHOTS.get(model, model)


def input_parts(body: dict[str, Any]) -> list[Any]:
    """What the prompt is made of, in order (instructions and tools first, then each input item)."""
    items = body.get("input")
    head = [body.get("instructions") or "", body.get("tools") or []]
    if isinstance(items, list):
        return head + items
    return [*head, items if items is not None else ""]


def reasoning_echo(body: dict[str, Any], reasons: bool) -> dict[str, Any]:
    asked: dict[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    if not reasons:
        return {"effort": None, "summary": None}
    summary = asked.get("summary")
    return {"effort": asked.get("effort") or "medium", "summary": "detailed" if summary == "auto" else summary}


def _last_user_text(items: Any) -> str | None:
    """The text of the last input item when it is a user message (None after a tool's output)."""
    if isinstance(items, str):
        return items
    if not isinstance(items, list) or not items:
        return None
    last = items[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def choose_call(body: dict[str, Any]) -> Call | None:
    """The function call the model makes for this request, if any (see the module docstring)."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"
             and isinstance(t.get("name"), str)]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    tool = None
    if isinstance(choice, dict) and choice.get("type") == "function":
        tool = next((t for t in tools if t["name"] == choice.get("name")), None)
    elif choice == "required":
        tool = tools[0]
    else:
        text = _last_user_text(body.get("input"))
        if text:
            lowered = text.lower()
            tool = next((t for t in tools if t["name"].lower() in lowered), None)
    if tool is None:
        return None
    return Call(tool["name"], orjson.dumps(arguments_for(tool.get("parameters"))).decode())


def argument_pieces(call: Call | None) -> list[str]:
    """The arguments as streamed: one delta per token, about 4 characters each."""
    if call is None:
        return []
    text = call.arguments
    return [text[i:i + 4] for i in range(0, len(text), 4)] or [""]


def make_plan(body: dict[str, Any], *, reply_tokens: int, reasons: bool, organization: str,
              cached_tokens: int = 0) -> Plan:
    """What the model does for `body` (already validated), its encrypted content made for `organization`."""
    model = body["model"]
    reasoning = reasoning_echo(body, reasons)
    effort = reasoning["effort"]
    reasoning_tokens = EFFORT_TOKENS.get(effort, 64) if reasons and effort else 0
    call = choose_call(body)
    text_tokens = 0 if call else reply_tokens
    limit = body.get("max_output_tokens")
    incomplete = False
    if isinstance(limit, int):
        if reasoning_tokens >= limit:
            reasoning_tokens, text_tokens, incomplete = limit, 0, True
            call = None
        elif call is None and reasoning_tokens + text_tokens > limit:
            text_tokens, incomplete = limit - reasoning_tokens, True
    include: list[Any] = body["include"] if isinstance(body.get("include"), list) else []
    input_tokens = textgen.estimate_tokens(body.get("input"), body.get("instructions"), body.get("tools"))
    return Plan(
        body=body,
        model=snapshot(model),
        input_tokens=input_tokens,
        cached_tokens=min(cached_tokens, input_tokens),
        reasoning=reasoning,
        reasoning_tokens=reasoning_tokens,
        summary=reasoning_tokens > 0 and reasoning["summary"] in ("detailed", "concise"),
        encrypted=reasoning_tokens > 0 and "reasoning.encrypted_content" in include,
        call=call,
        text_tokens=text_tokens,
        incomplete=incomplete,
        latest=model.startswith(LATEST_PREFIXES),
        organization=organization,
    )


# ------------------------------------------------------------------------------- the response object


def _tool_echo(tool: Any) -> Any:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    strict = tool.get("strict", True)
    parameters = tool.get("parameters")
    if strict and isinstance(parameters, dict) and "additionalProperties" not in parameters:
        parameters = {**parameters, "additionalProperties": False}
    return {"type": "function", "description": tool.get("description"), "name": tool.get("name"),
            "parameters": parameters, "strict": strict}


def _text_echo(body: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
    return {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"}


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def response_object(
    plan: Plan,
    response_id: str,
    created_at: int,
    *,
    status: str,
    output: list[Any],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
    billing: bool = False,
) -> dict[str, Any]:
    """The ``response`` object in the vendor's key order."""
    body = plan.body
    done = status in ("completed", "incomplete")
    tier = body.get("service_tier") or "auto"
    obj: dict[str, Any] = {"id": response_id, "object": "response", "created_at": created_at, "status": status,
                           "background": body.get("background") is True}
    if billing:
        obj["billing"] = {"payer": "developer"}
    obj.update({
        "completed_at": int(time.time()) if done else None,
        "error": error,
        "frequency_penalty": _number(body.get("frequency_penalty"), 0.0),
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": plan.model,
        "moderation": None,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "presence_penalty": _number(body.get("presence_penalty"), 0.0),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "prompt_cache_retention": body.get("prompt_cache_retention") or ("24h" if plan.latest else None),
        "reasoning": plan.reasoning,
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default" if done and tier == "auto" else tier,
        "store": body.get("store") is not False,
        "temperature": _number(body.get("temperature"), 1.0),
        "text": _text_echo(body),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_tool_echo(tool) for tool in body.get("tools") or ()],
        "top_logprobs": body.get("top_logprobs") or 0,
        "top_p": _number(body.get("top_p"), 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    })
    return obj
