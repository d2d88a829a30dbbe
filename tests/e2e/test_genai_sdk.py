"""The official google-genai SDK (native Gemini API) against the daemon and the fake upstream."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator

import orjson
import pytest
from google import genai
from google.genai import errors, types

from tests.checkers.gemini import check_gemini_stream
from tests.fakes import scripts as s
from tests.support import RawClient, running_daemon

pytestmark = pytest.mark.e2e

WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather in a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                            required=["city"]))])
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture
def settings(upstream_settings):
    return upstream_settings


@contextlib.asynccontextmanager
async def gemini(listener, api_key: str = "test-key") -> AsyncIterator[genai.client.AsyncClient]:
    """An async google-genai client aimed at the daemon (Developer API, v1beta, x-goog-api-key)."""
    host, port = listener.address
    api = genai.Client(vertexai=False, api_key=api_key, http_options=types.HttpOptions(base_url=f"http://{host}:{port}"))
    try:
        yield api.aio
    finally:
        await api.aio.aclose()
        api.close()


async def test_generate_content(settings, fake):
    fake.script(s.stream_reply(s.text("Hel", "lo"), s.usage(prompt=12, candidates=2)))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            response = await api.models.generate_content(
                model="gemini-3-flash", contents="hi",
                config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=100,
                                                   temperature=0.5))
    assert response.text == "Hello"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (12, 2, 14)
    (request,) = fake.generation_requests
    sent = request.json["request"]
    assert request.json["model"] == "gemini-3-flash"
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert "".join(p["text"] for p in sent["systemInstruction"]["parts"]) == "Be brief."
    assert sent["generationConfig"]["maxOutputTokens"] == 100 and sent["generationConfig"]["temperature"] == 0.5


async def test_generate_content_stream_and_its_raw_bytes(settings, fake):
    fake.script(s.stream_reply(s.thinking("Think"), s.text("Hello", " world"), s.usage(prompt=5, candidates=2,
                                                                                         thoughts=3)))
    fake.script(s.stream_reply(s.text("one", " two", " three")))
    async with running_daemon(settings) as (listener, _app, _routes):
        http = await RawClient.connect(listener.address)
        try:
            http.send_request("POST", "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", orjson.dumps(
                {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                 "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}),
                headers=[("content-type", "application/json"), ("x-goog-api-key", "test-key")])
            raw = await http.read_reply()
        finally:
            http.close()
        async with gemini(listener) as api:
            chunks = [chunk async for chunk in await api.models.generate_content_stream(
                model="gemini-3-flash", contents="count to three")]
    assert raw.status == 200 and raw.headers[b"content-type"].startswith(b"text/event-stream")
    summary = check_gemini_stream(raw.body)
    assert summary["text"] == "Hello world" and summary["thoughts"] == "Think"
    assert summary["finish_reason"] == "STOP" and summary["usage"]["thoughtsTokenCount"] == 3
    assert "".join(c.text or "" for c in chunks) == "one two three"
    assert len(chunks) >= 3  # streamed, not aggregated
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert fake.generation_requests[1].path == "/v1internal:streamGenerateContent"


async def test_heartbeats_during_a_silence_are_bare_blank_lines(settings, fake):
    fake.script(s.stream_reply(s.text("thinking hard"), s.pause(0.8), s.text(" done")))  # ~4 heartbeats of 0.2 s
    fake.script(s.stream_reply(s.text("thinking hard"), s.pause(0.8), s.text(" done")))
    async with running_daemon(settings) as (listener, _app, _routes):
        http = await RawClient.connect(listener.address)
        try:
            http.send_request("POST", "/v1beta/models/gemini-3-flash:streamGenerateContent?alt=sse", orjson.dumps(
                {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
                headers=[("content-type", "application/json"), ("x-goog-api-key", "test-key")])
            raw = await http.read_reply()
        finally:
            http.close()
        async with gemini(listener) as api:  # google-genai json-parses any other non-blank line
            chunks = [chunk async for chunk in await api.models.generate_content_stream(
                model="gemini-3-flash", contents="hi")]
    assert check_gemini_stream(raw.body)["text"] == "thinking hard done"  # no comment lines allowed
    assert re.search(rb"(\r?\n){3}", raw.body), "no heartbeat blank line was sent during the silence"
    assert "".join(c.text or "" for c in chunks) == "thinking hard done"


async def test_count_tokens(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            counted = await api.models.count_tokens(model="gemini-3-flash",
                                                    contents="The quick brown fox jumps over the lazy dog.")
    assert 8 <= counted.total_tokens <= 14
    assert fake.generation_requests == []


async def test_a_function_call_and_its_signature_round_trip(settings, fake):
    signature = base64.b64encode(b"gemini-thought-signature-" * 4).decode()
    fake.script(s.stream_reply(s.thinking("Use the tool."),
                               s.function_call("get_weather", {"city": "Paris"}, id="8hd01vsf", signature=signature)))
    fake.script(s.stream_reply(s.text("Sunny in Paris.")))
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
    question = types.Content(role="user", parts=[types.Part.from_text(text="weather in Paris?")])
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            first = await api.models.generate_content(model="gemini-3-flash", contents=[question], config=config)
            (call,) = first.function_calls
            assert (call.name, call.args, call.id) == ("get_weather", {"city": "Paris"}, "8hd01vsf")
            answer = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                id=call.id, name=call.name, response={"result": "sunny"}))])
            second = await api.models.generate_content(
                model="gemini-3-flash", contents=[question, first.candidates[0].content, answer], config=config)
    assert second.text == "Sunny in Paris."
    call_part = next(p for p in first.candidates[0].content.parts if p.function_call)
    assert call_part.thought_signature == base64.b64decode(signature)  # passed through byte for byte
    declarations = fake.generation_requests[0].json["request"]["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather"]
    contents = fake.generation_requests[1].json["request"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    replayed = next(p for p in contents[1]["parts"] if "functionCall" in p)
    assert replayed["thoughtSignature"] == signature
    assert replayed["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}, "id": "8hd01vsf"}
    assert contents[2]["parts"] == [{"functionResponse": {"id": "8hd01vsf", "name": "get_weather",
                                                          "response": {"result": "sunny"}}}]


async def test_models_list(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            listed = [model async for model in await api.models.list()]
            one = await api.models.get(model="gemini-3-flash")
    names = [m.name for m in listed]
    assert "models/gemini-3-flash" in names and "models/claude-sonnet-4-6" in names
    assert len(names) == len(set(names))
    assert one.name == "models/gemini-3-flash"
    assert "generateContent" in (one.supported_actions or [])


async def test_upstream_429_is_a_client_error_429(settings, fake):
    fake.script(s.quota_exhausted(reset_after=30, model="gemini-3-flash"))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            with pytest.raises(errors.ClientError) as info:
                await api.models.generate_content(model="gemini-3-flash", contents="hi")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"


async def test_unknown_model_is_a_404(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener) as api:
            with pytest.raises(errors.ClientError) as info:
                await api.models.generate_content(model="gemini-0.1-nonexistent", contents="hi")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"
    assert fake.generation_requests == []


async def test_the_key_travels_in_x_goog_api_key(make_settings, fake):
    from tests.support import seed_account

    settings = make_settings(AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_OAUTH_TOKEN_URL=fake.token_url,
                             AGPROXY_USERINFO_URL=fake.userinfo_url, AGPROXY_API_KEYS="team=sk-team-0123456789")
    seed_account(settings.data_dir, fake)
    async with running_daemon(settings) as (listener, _app, _routes):
        async with gemini(listener, api_key="wrong-key-123") as api:
            with pytest.raises(errors.ClientError) as info:
                await api.models.generate_content(model="gemini-3-flash", contents="hi")
        async with gemini(listener, api_key="sk-team-0123456789") as api:
            response = await api.models.generate_content(model="gemini-3-flash", contents="hi")
    assert info.value.code == 401
    assert response.text == s.DEFAULT_TEXT
    assert len(fake.generation_requests) == 1
