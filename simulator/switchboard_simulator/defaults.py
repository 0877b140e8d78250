"""The credentials and names the simulator accepts out of the box, importable by launchers and tests.

`make run` (tools/switchboard_stack) gives its demo accounts these values, so they must match the
defaults of each vendor's config section; the config modules read them from here.
"""

from __future__ import annotations

ANTHROPIC_KEY = "sk-sim-anthropic"
ANTHROPIC_OAUTH_REFRESH_TOKEN = "sim-refresh-token"
ANTHROPIC_OAUTH_TOKEN_LIFETIME_SECONDS = 28800  # 8 hours, what the vendor's token endpoint grants

OPENAI_KEY = "sk-sim-openai"
OPENAI_NO_QUOTA_KEY = "sk-sim-no-quota"  # valid on /v1/responses, always 429 insufficient_quota

CODEX_OAUTH_REFRESH_TOKEN = "sim-codex-refresh-token"
CODEX_OAUTH_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"  # Codex CLI's public client id (codex-rs auth.rs)
CODEX_OAUTH_TOKEN_LIFETIME_SECONDS = 864000  # 10 days, what auth.openai.com grants ChatGPT access tokens
CODEX_ACCOUNT_ID = "5e1a7c3b-0000-4000-8000-00c0dec0de00"  # chatgpt_account_id of the simulated account
CODEX_PLAN_TYPE = "plus"

AZURE_OPENAI_KEY = "sk-sim-azure"
AZURE_OPENAI_API_VERSION = "2024-10-21"  # any well-formed api-version is accepted; this one is GA
AZURE_OPENAI_DEPLOYMENTS = {  # deployment name -> model it serves
    "gpt-4o": "gpt-4o",
    "gpt-4o-mini": "gpt-4o-mini",
    "gpt-4.1": "gpt-4.1",
    "gpt-4.1-mini": "gpt-4.1-mini",
    "o3-mini": "o3-mini",
    "gpt-5-nano": "gpt-5-nano",
}

BEDROCK_ACCESS_KEY_ID = "AKIASIMULATOR0000000"
BEDROCK_SECRET_ACCESS_KEY = "sim-bedrock-secret"
BEDROCK_REGION = "us-east-1"
BEDROCK_API_KEY = "sk-sim-bedrock"

GEMINI_KEY = "AIzaSimulatorGemini00000000000000000000"  # shaped like a real key: AIza + 35 characters
GEMINI_MODELS = ("gemini-*",)  # served model globs (Gemini CLI's gemini-2.5-pro, gemini-3-flash-preview, ...)

#: Keys every vendor accepts that always fail in one way (a request's own fault header still wins).
KEY_FAULTS = {"sk-sim-broken": "500", "sk-sim-ratelimited": "429", "sk-sim-overloaded": "overloaded"}
