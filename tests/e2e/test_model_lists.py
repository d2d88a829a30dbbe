"""Model lists come from the account's live catalogue (fetchAvailableModels, cached), hide
the IDE's internal models, list the user's aliases, and take each protocol's shape; a model
only the live catalogue has is served."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from daemon.config import Settings
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.support import RawClient, one_request, running_daemon

pytestmark = pytest.mark.e2e

LIVE_ONLY = "gemini-9-preview"  # in no static list: only the fake account's catalogue has it


@pytest.fixture
def settings(upstream_settings: Settings, fake: FakeUpstream) -> Settings:
    fake.account("user@example.com").quota[LIVE_ONLY] = (1.0, None)
    return dataclasses.replace(upstream_settings, model_map=(("house-model", "gemini-3-flash"), ("claude-x-*", "gemini-3-flash")))


async def get(listener, path: str, headers: list[tuple[str, str]] | None = None) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    reply = await one_request(listener, "GET", path, headers=headers)
    return reply.status, orjson.loads(reply.body)


async def test_the_openai_list_is_the_live_catalogue_plus_aliases(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        status, body = await get(listener, "/v1/models")
    ids = [entry["id"] for entry in body["data"]]
    assert status == 200 and body["object"] == "list"
    assert LIVE_ONLY in ids and "gemini-3-flash" in ids and "claude-sonnet-4-6" in ids
    assert "house-model" in ids and "claude-x-*" not in ids  # patterns are not names
    assert not [name for name in ids if name.startswith(("chat_", "tab_"))]
    assert all(entry["object"] == "model" and isinstance(entry["created"], int) for entry in body["data"])
    assert len([r for r in fake.requests if r.path == "/v1internal:fetchAvailableModels"]) == 1


async def test_each_protocol_gets_its_own_shape(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        _, anthropic = await get(listener, "/v1/models", [("anthropic-version", "2023-06-01")])
        _, gemini = await get(listener, "/v1/models", [("x-goog-api-key", "k")])
        _, gemini_beta = await get(listener, "/v1beta/models")
        _, one = await get(listener, "/v1/models/house-model")
        status, missing = await get(listener, "/v1/models/no-such-model")
    assert anthropic["has_more"] is False and {"type", "id", "display_name", "created_at"} <= set(anthropic["data"][0])
    assert gemini == gemini_beta
    flash = next(m for m in gemini["models"] if m["name"] == "models/gemini-3-flash")
    assert flash["outputTokenLimit"] == 65536 and "generateContent" in flash["supportedGenerationMethods"]
    assert one == {"id": "house-model", "object": "model", "created": one["created"], "owned_by": "antigravity"}
    assert status == 404 and missing["error"]["code"] == "model_not_found"


async def test_a_model_only_the_live_catalogue_lists_is_served(settings, fake):
    fake.script(s.stream_reply(s.text("hi")))
    request = orjson.dumps({"model": LIVE_ONLY, "messages": [{"role": "user", "content": "hi"}]})
    async with running_daemon(settings) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        try:
            client.send_request("POST", "/v1/chat/completions", request, [("content-type", "application/json")])
            after = await client.read_reply()  # the name is unknown until the catalogue is fetched
            client.send_request("POST", "/v1/chat/completions", b'{"model": "gemini-10", "messages": []}',
                                [("content-type", "application/json")])
            unknown = await client.read_reply()
        finally:
            client.close()
    assert unknown.status == 404 and LIVE_ONLY in orjson.loads(unknown.body)["error"]["message"]
    assert len(fake.requests_to("/v1internal:fetchAvailableModels")) == 1  # fresh for a while: not asked again
    assert after.status == 200 and orjson.loads(after.body)["choices"][0]["message"]["content"] == "hi"
    assert fake.generation_requests[0].json["model"] == LIVE_ONLY
