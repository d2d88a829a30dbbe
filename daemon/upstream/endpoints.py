"""Cloud Code method paths and the headers every upstream call carries (pure)."""

from __future__ import annotations

LOAD_CODE_ASSIST = "/v1internal:loadCodeAssist"
ONBOARD_USER = "/v1internal:onboardUser"
FETCH_AVAILABLE_MODELS = "/v1internal:fetchAvailableModels"
GENERATE = "/v1internal:generateContent"
STREAM_GENERATE = "/v1internal:streamGenerateContent?alt=sse"


def operation_path(name: str) -> str:
    return "/v1internal/" + name.lstrip("/")


def json_headers(access_token: str, user_agent: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"authorization", b"Bearer " + access_token.encode()),
        (b"content-type", b"application/json"),
        (b"user-agent", user_agent.encode()),
    ]


def discovery_order(base_urls: tuple[str, ...]) -> tuple[str, ...]:
    """Project discovery asks the production host first: peers found that fresh accounts
    resolve better there (doc §2.1); daily and sandbox hosts follow in configured order."""
    return tuple(sorted(base_urls, key=lambda url: "daily" in url or "sandbox" in url))
