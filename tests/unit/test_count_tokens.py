"""The local count_tokens estimate stays within 15% of a real Claude tokenizer on English and code.

The reference is the tokenizer older anthropic SDK releases shipped (tests/run.sh extracts
it); current Claude and Gemini tokenizers are not available offline, so this bounds the
heuristic against the closest real one we can run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.translate.count_tokens import estimate_tokens
from tests.clients import reference_tokenizer

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parent.parent.parent
CLAUDE_CODE = json.loads((ROOT / "tests/data/clients/claude-code.default-model.001.json").read_text())["body"]

SAMPLES = {
    "english: README": (ROOT / "README.md").read_text(),
    "english: Claude Code system prompt": "\n".join(block["text"] for block in CLAUDE_CODE["system"]),
    "code: http_server/protocol.py": (ROOT / "daemon/http_server/protocol.py").read_text(),
    "code: accounts/store.py": (ROOT / "daemon/accounts/store.py").read_text(),
    "code: a test module": (ROOT / "tests/e2e/test_anthropic_sdk.py").read_text(),
    "json: Claude Code tool schemas": json.dumps(CLAUDE_CODE["tools"]),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_estimate_is_within_15_percent_of_a_claude_tokenizer(name: str) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(reference_tokenizer()))
    text = SAMPLES[name]
    real = len(tokenizer.encode(text).ids)
    estimate = estimate_tokens({"contents": [{"role": "user", "parts": [{"text": text}]}]})
    assert abs(estimate - real) <= 0.15 * real, f"{name}: estimate {estimate}, tokenizer {real}"
