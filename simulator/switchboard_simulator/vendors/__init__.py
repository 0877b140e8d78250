"""The vendors the simulator speaks, one module each, and the registry that lists them.

Each module holds its vendor's routes, key check, validation, error bodies, rate-limit headers and
replies, plus its config `Section`; `VENDORS` is the only list of them (config sections, flags and
routes are all generated from it).
"""

from __future__ import annotations

from . import anthropic, azure_openai, bedrock, codex, gemini, openai, openai_responses
from .registry import Route, Vendor

VENDORS: tuple[Vendor, ...] = (
    Vendor(anthropic.SECTION, anthropic.routes),
    Vendor(openai.SECTION, openai.routes),
    Vendor(azure_openai.SECTION, azure_openai.routes),
    Vendor(bedrock.SECTION, bedrock.routes),
    Vendor(openai_responses.SECTION, openai_responses.routes),
    Vendor(codex.SECTION, codex.routes),
    Vendor(gemini.SECTION, gemini.routes),
)

__all__ = ["VENDORS", "Route", "Vendor"]
