"""What the fuzz tests draw from: real requests and upstream streams (the translator tests' golden files), and
mutations of them that keep most of a message valid so the fuzzing reaches deep into each parser.

A mutation picks a place anywhere in the JSON tree and replaces it with another JSON value (often one of the
field names and string values the seeds themselves use), deletes it, or adds a field beside it.
"""

import copy
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEDecoder, SSEEvent
from switchboard_edge.translate.base import Translator

GOLDEN = Path(__file__).parent.parent / "translate" / "golden"
DONE = "[DONE]"

# A platform answering in each format (the one a translated request's reasoning seals name).
PLATFORM_OF = {ClientFormat.ANTHROPIC: platforms.CLAUDE_CONSOLE, ClientFormat.OPENAI: platforms.OPENAI,
               ClientFormat.GEMINI: platforms.GEMINI, ClientFormat.RESPONSES: platforms.OPENAI_RESPONSES}


@dataclass
class Seeds:
    """One direction's golden files: client requests, whole upstream answers, upstream streams (each a list of
    event payloads, `DONE` for OpenAI's end marker)."""

    translator: Translator
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    streams: list[list[Any]] = field(default_factory=list)


def _payloads(entries: list[Any]) -> Iterator[Any]:
    for entry in entries:
        if not isinstance(entry, str):
            yield entry
            continue
        for event in SSEDecoder().feed(entry.encode() + b"\n\n"):
            if event.data == b"[DONE]":
                yield DONE
            elif event.data:  # comments and keep-alives carry none
                yield orjson.loads(event.data)


def _load() -> dict[str, Seeds]:
    seeds: dict[str, Seeds] = {}
    for folder in sorted(path for path in GOLDEN.iterdir() if path.is_dir()):
        module = importlib.import_module(f"switchboard_edge.translate.{folder.name}")
        found = seeds[folder.name] = Seeds(module.TRANSLATOR)
        for path in sorted(folder.glob("*.json")):
            case = orjson.loads(path.read_bytes())
            if path.name.startswith("request-"):
                found.requests.append(case.get("client", case.get("request")))
            elif path.name.startswith("response-"):
                found.answers.append(case["upstream"])
            elif path.name.startswith("stream-"):
                found.streams.append(list(_payloads(case["upstream"])))
    return seeds


SEEDS = _load()
DIRECTIONS = sorted(SEEDS)


def requests_in(client_format: ClientFormat) -> list[dict[str, Any]]:
    """Every golden request of a client format, whichever direction's folder holds it."""
    return [request for seeds in SEEDS.values() if seeds.translator.client is client_format
            for request in seeds.requests]


def _words(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            into.add(key)
            _words(item, into)
    elif isinstance(value, list):
        for item in value:
            _words(item, into)
    elif isinstance(value, str) and len(value) <= 40:
        into.add(value)
    return into


_VOCABULARY: set[str] = set()
for _seeds in SEEDS.values():
    _words([_seeds.requests, _seeds.answers, _seeds.streams], _VOCABULARY)
WORDS = st.sampled_from(sorted(_VOCABULARY))

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.sampled_from([0, -1, 1, 2**53]),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6), WORDS)
JSON = st.recursive(_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(st.one_of(WORDS, st.text(max_size=4)), children, max_size=3)),
    max_leaves=6)


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in the tree, the root's `()` first."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        root = root[step]
    return root


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any], most: int = 3) -> Any:
    """One of `seeds`, changed in 1..`most` places."""
    value = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, most))):
        path = draw(st.sampled_from(list(_places(value))))
        if not path:
            value = draw(JSON)
            continue
        parent = _at(value, path[:-1])
        change = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if change == "replace":
            parent[path[-1]] = draw(JSON)
        elif change == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(WORDS)] = draw(JSON)
        else:
            parent.insert(path[-1], draw(JSON))
    return value


@st.composite
def mutated_object(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """A mutated seed that is still a JSON object (what the relay hands a translator)."""
    value = draw(mutated(seeds))
    return value if isinstance(value, dict) else {"value": value}


@st.composite
def mutated_stream(draw: st.DrawFn, streams: list[list[Any]]) -> list[Any]:
    """A golden stream with events changed, dropped, repeated or moved."""
    events = copy.deepcopy(draw(st.sampled_from(streams)))
    for _ in range(draw(st.integers(1, 4))):
        change = draw(st.sampled_from(["event", "event", "drop", "repeat", "move"]))
        if not events:
            events.append(draw(JSON))
            continue
        index = draw(st.integers(0, len(events) - 1))
        if change == "event":
            events[index] = draw(mutated([events[index]], most=2))
        elif change == "drop":
            del events[index]
        elif change == "repeat":
            events.insert(index, copy.deepcopy(events[index]))
        else:
            events.insert(draw(st.integers(0, len(events) - 1)), events.pop(index))
    return events


def sse_event(payload: Any, upstream: ClientFormat) -> SSEEvent:
    """A payload as the upstream format frames it (named events for Anthropic and Responses)."""
    if payload == DONE:
        return SSEEvent(b"data: [DONE]\n\n")
    data = orjson.dumps(payload)
    name = payload.get("type") if isinstance(payload, dict) else None
    if upstream in (ClientFormat.ANTHROPIC, ClientFormat.RESPONSES):
        label = name if isinstance(name, str) and "\n" not in name and "\r" not in name else "message"
        return SSEEvent(b"event: " + label.encode() + b"\ndata: " + data + b"\n\n")
    return SSEEvent(b"data: " + data + b"\n\n")
