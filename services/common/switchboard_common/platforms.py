"""The platform ids of the public contract (proxy-api, "Supported platforms")."""

CLAUDE_OFFICIAL = "claude-official"
CLAUDE_CONSOLE = "claude-console"
CLAUDE_CCR = "claude-ccr"
BEDROCK = "bedrock"
OPENAI = "openai"
AZURE_OPENAI = "azure-openai"
GEMINI = "gemini"
OPENAI_RESPONSES = "openai-responses"

ALL: tuple[str, ...] = (
    CLAUDE_OFFICIAL,
    CLAUDE_CONSOLE,
    CLAUDE_CCR,
    BEDROCK,
    OPENAI,
    AZURE_OPENAI,
    GEMINI,
    OPENAI_RESPONSES,
)


def is_platform(value: str) -> bool:
    return value in ALL
