"""Identifier formats exactly as the vendors print them (lengths and alphabets taken from the recordings).

Anthropic: ``msg_01`` + 22 base58 characters, ``req_011C`` + 20 base58 characters; on Bedrock
``msg_bdrk_01`` + 22 base58 characters. AWS and Azure request ids are UUIDs.
OpenAI: ``chatcmpl-`` + 29 alphanumerics, ``req_`` + 32 hex digits, ``fp_`` + 10 hex digits, and the
``obfuscation`` padding of stream chunks (alphanumerics of varying length).
Ids only have to be unique, not secret, so a plain PRNG is used.
"""

from __future__ import annotations

import random
import string
import uuid

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ALNUM = string.ascii_letters + string.digits
_rng = random.Random()
_choices = _rng.choices


def anthropic_message_id() -> str:
    return "msg_01" + "".join(_choices(_BASE58, k=22))


def anthropic_request_id() -> str:
    return "req_011C" + "".join(_choices(_BASE58, k=20))


def bedrock_message_id() -> str:
    return "msg_bdrk_01" + "".join(_choices(_BASE58, k=22))


def bedrock_tool_use_id() -> str:
    return "toolu_bdrk_01" + "".join(_choices(_BASE58, k=22))


def request_uuid() -> str:
    """AWS ``x-amzn-RequestId``, Azure ``apim-request-id`` and ``x-request-id``."""
    return str(uuid.UUID(int=_rng.getrandbits(128), version=4))


def openai_completion_id() -> str:
    return "chatcmpl-" + "".join(_choices(_ALNUM, k=29))


def openai_request_id() -> str:
    return f"req_{_rng.getrandbits(128):032x}"


def system_fingerprint() -> str:
    return f"fp_{_rng.getrandbits(40):010x}"


# The vendor pads each chunk with 1-16 random characters. A fixed pool indexed by the chunk's position
# gives the same shape at no per-chunk cost, and streams of the same shape have the same length.
_OBFUSCATION_POOL = tuple("".join(_choices(_ALNUM, k=_rng.randint(1, 16))).encode() for _ in range(97))


def obfuscation(position: int) -> bytes:
    """The ``obfuscation`` value for the chunk at `position` (ASCII alphanumerics, JSON-safe)."""
    return _OBFUSCATION_POOL[position % len(_OBFUSCATION_POOL)]
