"""The Responses API's output side, shared by `openai_responses` and `codex`: output items, the typed SSE
events, in-stream failures and the compaction answer. Shapes follow vendor-recordings/openai-responses:

- items: ``reasoning`` {id, type, [encrypted_content], summary[{type: summary_text, text}]},
  ``message`` {id, type, status, content[{type: output_text, annotations, logprobs, text}], [phase],
  role}, ``function_call`` {id, type, status, arguments, call_id, name};
- stream: ``event: <type>\\ndata: <json>\\n\\n``, the data object's keys ``type`` first then
  alphabetical, ``sequence_number`` counting from 0: response.created, response.in_progress, then per
  item output_item.added, (reasoning_summary_part.added, reasoning_summary_text.delta…, .done,
  reasoning_summary_part.done | content_part.added, output_text.delta…, output_text.done,
  content_part.done | function_call_arguments.delta…, .done), output_item.done, and last
  response.completed (or response.incomplete). Deltas carry ``obfuscation`` unless
  ``stream_options.include_obfuscation`` is false;
- a failure is an ``error`` event (``{"type", "code", "message", "param"}`` nested under ``error``, as
  recorded) then ``response.failed`` with ``error: {code, message}``;
- compaction (``/responses/compact``): ``{id, object: "response.compaction", created_at, output: [the
  user messages as input_text messages…, {id: cmp_…, type: compaction, encrypted_content}], usage}``.

Reasoning and compaction ``encrypted_content`` is made for the caller's organisation (`Plan.organization`,
the `organization` argument of `compaction_object`) and verifies for it alone
(`responses_format.encrypted_content_problem`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson

from .. import ids, textgen
from ..sse import Frame
from . import responses_format as fmt
from .responses_format import Call, IdFactory, Plan, call_id, encrypted_content, response_object, usage

SSE_TYPE = "text/event-stream; charset=utf-8"
SUMMARY_TITLE = "**Simulating the answer**\n\n"
SUMMARY_TOKENS = 24


def _reasoning_item(item_id: str, summaries: list[str], encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning"}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    item["summary"] = [{"type": "summary_text", "text": text} for text in summaries]
    return item


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(item_id: str, status: str, text: str | None, phase: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "message", "status": status,
                            "content": [] if text is None else [_text_part(text)]}
    if phase:
        item["phase"] = "final_answer"
    item["role"] = "assistant"
    return item


def _call_item(item_id: str, status: str, call: Call, arguments: str, the_call_id: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments,
            "call_id": the_call_id, "name": call.name}


# ------------------------------------------------------------------------------------------- events


class Events:
    """Typed SSE events with running sequence numbers; remembers where the token-bearing deltas are."""

    def __init__(self, obfuscate: bool) -> None:
        self.frames: list[Frame] = []
        self.deltas: list[int] = []
        self.obfuscate = obfuscate

    def add(self, kind: str, tokens: int = 0, *, counted: bool = False, **fields: Any) -> None:
        fields["sequence_number"] = len(self.frames)
        if counted:
            if self.obfuscate:
                fields["obfuscation"] = ids.obfuscation(len(self.frames)).decode()
            self.deltas.append(len(self.frames))
        data = {"type": kind, **{key: fields[key] for key in sorted(fields)}}
        self.frames.append((b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n", tokens))

    def cut_after_deltas(self, count: int) -> None:
        """Keeps the frames up to and including the `count`-th delta (all of them if there are fewer)."""
        if count <= 0:
            del self.frames[2:]
        elif count < len(self.deltas):
            del self.frames[self.deltas[count - 1] + 1:]


def _summary_chunks(chunk_tokens: int) -> tuple[str, list[tuple[str, int]]]:
    pieces = [(SUMMARY_TITLE, 1), *_text_chunks(SUMMARY_TOKENS, chunk_tokens)]
    return "".join(text for text, _ in pieces), pieces


def _text_chunks(tokens: int, chunk_tokens: int) -> list[tuple[str, int]]:
    return [(orjson.loads(text), n) for text, n in textgen.chunks(tokens, chunk_tokens)]


@dataclass(frozen=True, slots=True)
class Failure:
    """An in-stream failure: the ``error`` event's error and the failed response's ``error``."""

    type: str
    code: str
    message: str


def render(
    plan: Plan,
    *,
    stream: bool,
    chunk_tokens: int = 1,
    obfuscate: bool = True,
    billing: bool = False,
    fail_after: int | None = None,
    failure: Failure | None = None,
) -> tuple[dict[str, Any], list[Frame]]:
    """The final response object and, for a stream, its events. With `failure`, the stream stops after
    `fail_after` deltas with an ``error`` event and ``response.failed``."""
    made = IdFactory()
    response_id, created_at = made.make("resp"), int(time.time())
    events = Events(obfuscate)
    if stream:
        start = response_object(plan, response_id, created_at, status="in_progress", output=[], usage=None)
        events.add("response.created", response=start)
        events.add("response.in_progress", response=start)
    output: list[Any] = []
    index = 0
    if plan.reasoning_tokens:
        item_id = made.make("rs")
        summary_text, pieces = _summary_chunks(chunk_tokens) if plan.summary else ("", [])
        done = _reasoning_item(item_id, [summary_text] if plan.summary else [],
                               encrypted_content(plan.reasoning_tokens * 8, plan.organization)
                               if plan.encrypted else None)
        if stream:
            events.add("response.output_item.added", item=_reasoning_item(item_id, [], None), output_index=index)
            if plan.summary:
                common: dict[str, Any] = {"item_id": item_id, "output_index": index, "summary_index": 0}
                events.add("response.reasoning_summary_part.added", part={"type": "summary_text", "text": ""},
                           **common)
                for text, tokens in pieces:
                    events.add("response.reasoning_summary_text.delta", tokens, counted=True, delta=text, **common)
                events.add("response.reasoning_summary_text.done", text=summary_text, **common)
                events.add("response.reasoning_summary_part.done",
                           part={"type": "summary_text", "text": summary_text}, **common)
            events.add("response.output_item.done", item=done, output_index=index)
        output.append(done)
        index += 1
    if plan.call is not None:
        item_id, the_call_id = made.make("fc"), call_id()
        done = _call_item(item_id, "completed", plan.call, plan.call.arguments, the_call_id)
        if stream:
            events.add("response.output_item.added", item=_call_item(item_id, "in_progress", plan.call, "",
                                                                    the_call_id), output_index=index)
            for piece in fmt.argument_pieces(plan.call):
                events.add("response.function_call_arguments.delta", 1, counted=True, delta=piece,
                           item_id=item_id, output_index=index)
            events.add("response.function_call_arguments.done", arguments=plan.call.arguments, item_id=item_id,
                       output_index=index)
            events.add("response.output_item.done", item=done, output_index=index)
        output.append(done)
    elif plan.text_tokens:
        item_id = made.make("msg")
        text = textgen.reply(plan.text_tokens).text
        status = "incomplete" if plan.incomplete else "completed"
        done = _message_item(item_id, status, text, plan.latest)
        if stream:
            fields: dict[str, Any] = {"item_id": item_id, "output_index": index, "content_index": 0}
            events.add("response.output_item.added", item=_message_item(item_id, "in_progress", None, plan.latest),
                       output_index=index)
            events.add("response.content_part.added", part=_text_part(""), **fields)
            for piece, tokens in _text_chunks(plan.text_tokens, chunk_tokens):
                events.add("response.output_text.delta", tokens, counted=True, delta=piece, logprobs=[],
                           **fields)
            events.add("response.output_text.done", logprobs=[], text=text, **fields)
            events.add("response.content_part.done", part=_text_part(text), **fields)
            events.add("response.output_item.done", item=done, output_index=index)
        output.append(done)
    status = "incomplete" if plan.incomplete else "completed"
    final = response_object(plan, response_id, created_at, status=status, output=output, usage=plan.usage(),
                            billing=billing and not stream)
    if stream and failure is not None:
        events.cut_after_deltas(fail_after or 0)
        append_failure(events, plan, response_id, created_at, failure)
    elif stream:
        events.add(f"response.{status}", response=final)
    return final, events.frames


def append_failure(events: Events, plan: Plan, response_id: str, created_at: int, failure: Failure) -> None:
    """The vendor's in-stream failure: ``error`` (nested error object, as recorded) then ``response.failed``."""
    events.add("error", error={"type": failure.type, "code": failure.code, "message": failure.message,
                               "param": None})
    failed = response_object(plan, response_id, created_at, status="failed", output=[], usage=None,
                             error={"code": failure.code, "message": failure.message})
    events.add("response.failed", response=failed)


def failure_stream(plan: Plan, failure: Failure) -> list[Frame]:
    """A stream that fails before any output: created, in_progress, error, failed (as recorded)."""
    made = IdFactory()
    response_id, created_at = made.make("resp"), int(time.time())
    events = Events(obfuscate=False)
    start = response_object(plan, response_id, created_at, status="in_progress", output=[], usage=None)
    events.add("response.created", response=start)
    events.add("response.in_progress", response=start)
    append_failure(events, plan, response_id, created_at, failure)
    return events.frames


# ---------------------------------------------------------------------------------------- compaction


def compaction_object(items: Any, *, reasons: bool, organization: str) -> dict[str, Any]:
    """``POST /responses/compact``: the user messages kept verbatim, then one opaque ``compaction`` item
    (encrypted for `organization`)."""
    made = IdFactory()
    response_id = made.make("resp")
    kept: list[Any] = []
    for item in [items] if isinstance(items, str) else items if isinstance(items, list) else ():
        text: Any = item if isinstance(item, str) else None
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            content = item.get("content")
            text = content if isinstance(content, str) else None
            if isinstance(content, list):
                parts = [{"type": "input_text", "text": p.get("text", "")} for p in content
                         if isinstance(p, dict) and p.get("type") in ("input_text", "text")]
                kept.append(_user_message(made.make("msg"), parts))
                continue
        if isinstance(text, str):
            kept.append(_user_message(made.make("msg"), [{"type": "input_text", "text": text}]))
    input_tokens = textgen.estimate_tokens(items)
    output_tokens = max(16, math.ceil(input_tokens / 4))
    reasoning = output_tokens // 2 if reasons else 0
    compaction = {"id": made.make("cmp"), "type": "compaction",
                  "encrypted_content": encrypted_content(min(16384, input_tokens * 2), organization)}
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, compaction],
        "usage": usage(input_tokens, 0, output_tokens, reasoning),
    }


def _user_message(item_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": "completed", "content": content, "role": "user"}
