"""Inlining media that clients reference by URL: the daemon fetches it (size cap, timeout)
and the upstream receives base64 data, since whether it fetches URLs itself is untested
(client-protocols.md §7.4). A failed fetch is the client's 400, never a 5xx."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ErrorKind, ProxyError
from ..http_client.errors import HTTPClientError, ResponseTooLarge

if TYPE_CHECKING:
    from ..app import App

MAX_MEDIA_BYTES = 20 * 1024 * 1024  # the upstream's inline-data limit
FETCH_TIMEOUT = 15.0  # seconds for one whole fetch
ACCEPTED = ("image/", "application/pdf", "text/plain")


async def inline_anthropic_urls(app: App, body: dict[str, Any]) -> None:
    """Replace every `{"source": {"type": "url", …}}` block in the messages with base64 data."""
    blocks = list(_anthropic_url_blocks(body.get("messages")))
    fetched = await _fetch_all(app, [str(block["source"].get("url") or "") for block in blocks])
    for block, (data, media_type) in zip(blocks, fetched, strict=True):
        block["source"] = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}


async def inline_openai_urls(app: App, body: dict[str, Any]) -> None:
    """Replace every http(s) image URL of a Chat (`image_url.url`) or Responses
    (`input_image.image_url`) request with a data URL."""
    slots = [(holder, key) for holder, key in _openai_url_slots(body) if _is_http(holder[key])]
    fetched = await _fetch_all(app, [holder[key] for holder, key in slots])
    for (holder, key), (data, media_type) in zip(slots, fetched, strict=True):
        holder[key] = f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _anthropic_url_blocks(messages: Any) -> Iterator[dict[str, Any]]:
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            nested = block.get("content") if block.get("type") == "tool_result" else None
            for inner in [block, *(nested if isinstance(nested, list) else ())]:
                source = inner.get("source") if isinstance(inner, dict) else None
                if isinstance(source, dict) and source.get("type") == "url":
                    yield inner


def _openai_url_slots(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    entries = body.get("messages") if "messages" in body else body.get("input")
    for entry in entries if isinstance(entries, list) else ():
        content = entry.get("content", entry.get("output")) if isinstance(entry, dict) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url" and isinstance(part.get("image_url"), dict):
                yield part["image_url"], "url"
            elif part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
                yield part, "image_url"


def _is_http(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(("http://", "https://"))


async def _fetch_all(app: App, urls: list[str]) -> list[tuple[bytes, str]]:
    if not urls:  # the usual case: no event-loop round trip through an empty gather()
        return []
    for url in urls:
        if not _is_http(url):
            raise ProxyError(ErrorKind.INVALID_REQUEST, f"source.url must be an http(s) URL, got {url[:80]!r}")
    return list(await asyncio.gather(*(fetch(app, url) for url in urls)))


async def fetch(app: App, url: str) -> tuple[bytes, str]:
    """The bytes and media type at `url`; ProxyError(INVALID_REQUEST) when they cannot be used."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT):
            response = await app.http.request("GET", url, [(b"user-agent", b"antigravity-proxy")],
                                              first_byte_timeout=FETCH_TIMEOUT, idle_timeout=FETCH_TIMEOUT)
            try:
                data = await response.read(MAX_MEDIA_BYTES)
            finally:
                response.close()
    except ResponseTooLarge:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"{url[:200]} is larger than {MAX_MEDIA_BYTES} bytes") from None
    except (HTTPClientError, TimeoutError, ValueError) as exc:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"could not fetch {url[:200]}: {exc or 'timed out'}") from None
    if response.status != 200:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"fetching {url[:200]} answered HTTP {response.status}")
    media_type = (response.header(b"content-type") or b"").split(b";")[0].strip().decode("latin-1").lower()
    if not media_type.startswith(ACCEPTED):
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"{url[:200]} is {media_type or 'of no stated type'}, "
                         "not an image or a PDF")
    return data, media_type
