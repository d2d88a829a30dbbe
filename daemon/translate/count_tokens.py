"""A local token estimate for count_tokens (pure).

Whether the upstream's countTokens counts Claude models is unverified (upstream doc
§4.9), and an upstream call per count would cost an account request each time Claude
Code checks its context, so the daemon estimates: English prose runs about 4 characters
per token and source code about 3.3; text with many symbols is weighted towards the code
rate. Images cost a fixed amount, as Gemini's own counter charges. tests/unit/
test_count_tokens.py keeps the estimate within 15% of a real Claude tokenizer (the one
older anthropic SDK releases shipped) on English, code and JSON tool schemas.
"""

from __future__ import annotations

from typing import Any

import orjson

IMAGE_TOKENS = 258  # what Gemini charges per image tile
_SYMBOLS = frozenset("{}[]()<>;:=+-*/\\|&^%$#@!~`'\",._")


def estimate_tokens(request: dict[str, Any]) -> int:
    texts: list[str] = []
    images = 0
    for content in [request.get("systemInstruction") or {}, *request.get("contents", [])]:
        for part in content.get("parts", []):
            if "text" in part:
                texts.append(part["text"])
            elif "inlineData" in part:
                images += 1
            elif "functionCall" in part or "functionResponse" in part:
                texts.append(orjson.dumps(part).decode())
    for tool in request.get("tools", []):
        texts.append(orjson.dumps(tool).decode())
    return sum(_text_tokens(text) for text in texts) + images * IMAGE_TOKENS


def _text_tokens(text: str) -> int:
    if not text:
        return 0
    symbols = sum(1 for char in text if char in _SYMBOLS)
    code_share = min(1.0, 4 * symbols / len(text))  # about a quarter symbols reads as code
    chars_per_token = 4.0 - 0.7 * code_share
    return max(1, round(len(text) / chars_per_token))
