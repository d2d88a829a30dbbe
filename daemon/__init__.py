"""antigravity-proxy: serve Anthropic, OpenAI and Gemini clients through Antigravity accounts."""

__version__ = "0.1.0"
