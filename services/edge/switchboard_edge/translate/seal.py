"""Reasoning signatures made on one platform, carried through a client of another format.

Anthropic thinking signatures, Gemini thought signatures and OpenAI's encrypted reasoning are opaque
tokens that only the platform (and organisation) that made them accepts. When a translator hands such a
token to a client of another format (a Claude thinking signature in a Responses `encrypted_content`, a
Gemini thought signature in an Anthropic `signature`), it seals it: `sbx1.<platform>.<token>`. When the
client sends the conversation back, `opened` gives the token back byte-exact for that same platform, and
None for any other, where the block is then dropped (or its text kept as plain text when the target
takes that) instead of being rejected by the vendor.
"""

PREFIX = "sbx1."
MARK = PREFIX.encode()


def sealed(platform: str, token: str) -> str:
    """`token`, made by `platform`, as handed to a client of another format."""
    return f"{PREFIX}{platform}.{token}"


def origin(value: str) -> str | None:
    """The platform that made a sealed token; None for a token that is not sealed."""
    if not value.startswith(PREFIX):
        return None
    platform, dot, _ = value[len(PREFIX):].partition(".")
    return platform if dot else None


def opened(value: str, platform: str) -> str | None:
    """The original token when `value` was sealed by `platform`; None when it comes from anywhere else."""
    if origin(value) != platform:
        return None
    return value[len(PREFIX) + len(platform) + 1:]


def carries_seals(raw: bytes) -> bool:
    """Whether a request's bytes may hold sealed tokens (a byte search, no parse)."""
    return MARK in raw
