"""Secrets never show: Secret's repr, the redacting log formatter, e-mail masking."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from daemon import log as daemon_log
from daemon.redact import Secret, mask_email, redact

pytestmark = pytest.mark.unit

SAMPLES = [
    ("authorization: Bearer ya29.a0AfH6SMBsecret", "ya29.a0AfH6SMBsecret"),
    ("x-api-key: sk-ant-abc123", "sk-ant-abc123"),
    ("x-goog-api-key=AIzaSyD-1234567890abcdefghij", "AIzaSyD-1234567890abcdefghij"),
    ("GET /v1beta/models?key=AIzaSecretKeyValue123", "AIzaSecretKeyValue123"),
    ('{"refresh_token": "1//0gSecretRefresh", "expires_in": 3599}', "1//0gSecretRefresh"),
    ("client_secret=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&grant_type=refresh_token", "K58FWR486LdLJ1mLB8sXC4z6qDAf"),
    ("code=4/0AX4XfWsecretcode&state=abc", "4/0AX4XfWsecretcode"),
    ("token ya29.bare-token-in-text appeared", "ya29.bare-token-in-text"),
]


@pytest.mark.parametrize(("text", "secret"), SAMPLES)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_redact_keeps_ordinary_words() -> None:
    line = "GET /v1/messages 200 12.0ms ttfb=3.0ms bytes=512 max_tokens=1024 status_code=200"
    assert redact(line) == line


def test_secret_repr_hides_the_value_and_compares_in_constant_time() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert secret.matches("hunter2") and not secret.matches("hunter3")
    assert f"{secret}" == "Secret('***')"


def test_mask_email() -> None:
    assert mask_email("alice@example.com") == "al***e@example.com"
    # Pool accounts often differ only at the end: the masks still tell them apart.
    assert mask_email("acc001@example.com") != mask_email("acc002@example.com")
    # A short local part keeps no tail (it would give away too much of it).
    assert mask_email("user@example.com") == "us***@example.com"
    assert mask_email("no-at-sign") == "no***n"


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_log_lines_are_redacted_including_tracebacks(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    daemon_log.setup("info", fmt)
    logger = logging.getLogger("daemon.test")
    logger.info("refreshing with refresh_token=%s", "1//0gSecretRefresh")
    try:
        raise ValueError("upstream said access_token=ya29.leaked")
    except ValueError:
        logger.exception("failed")
    output = stream.getvalue()
    assert "1//0gSecretRefresh" not in output
    assert "ya29.leaked" not in output
    assert "refreshing with refresh_token=***" in output
    # the traceback is logged (redacted), so the checks above really covered it
    assert "Traceback (most recent call last)" in output and "ValueError: upstream said access_token=***" in output
    if fmt == "json":
        lines = [orjson.loads(line) for line in output.strip().splitlines()]
        assert lines[0]["level"] == "info" and lines[0]["logger"] == "daemon.test"
        assert "ValueError" in lines[1]["exc"]
    logging.getLogger().handlers.clear()
