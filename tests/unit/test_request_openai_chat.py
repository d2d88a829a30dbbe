"""OpenAI Chat Completions request → upstream request (client-protocols.md §3.2, §7; pure).

What every protocol shares is checked in test_request_translation.py; here: Chat's own
fields (system/developer anywhere, `n`, `max_completion_tokens`, `reasoning_effort`, seed and
penalties, `response_format`, `stop`, legacy functions, audio/file parts, tool_choice forms).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from daemon.translate import openai_chat_request
from daemon.translate.upstream_request import build
from tests.unit.test_request_translation import (
    CLAUDE,
    CLAUDE_THINKING,
    GEMINI,
    FakeSignatures,
    assert_well_formed,
    calls_of,
    contents,
    generation,
    raises_invalid,
    responses_of,
    roles,
    system_texts,
    texts_of,
)

pytestmark = pytest.mark.unit

HI = [{"role": "user", "content": "hi"}]


def chat(messages: list[dict[str, Any]] | None = None, model: str = GEMINI, **fields: Any) -> Any:
    request = {"model": "m", "messages": HI if messages is None else messages} | fields
    t = build(openai_chat_request.parse(request), model=model, session_key="s", signatures=FakeSignatures())
    assert_well_formed(t.request)
    return t


def invalid_param(**fields: Any) -> str | None:
    return raises_invalid(chat, **fields).param


# --- messages ---------------------------------------------------------------------------------


def test_system_and_developer_messages_anywhere_join_in_order() -> None:
    messages = [{"role": "developer", "content": "dev first"}, {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "part "}, {"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "yo"}, {"role": "developer", "content": "dev last"},
                {"role": "user", "content": "ok"}]
    t = chat(messages)
    assert system_texts(t) == ["dev first", "part two", "dev last"]
    assert roles(t) == ["user", "model", "user"]


def test_user_content_parts_keep_their_order() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
               {"type": "text", "text": "b"}, {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
               {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "x.pdf"}}]
    t = chat([{"role": "user", "content": content}])
    assert contents(t)[0]["parts"] == [
        {"text": "a"}, {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}, {"text": "b"},
        {"inlineData": {"mimeType": "audio/mp3", "data": "UklG"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]


@pytest.mark.parametrize("part", [
    {"type": "file", "file": {"file_id": "file-abc"}},
    {"type": "video_url", "video_url": "x"},
    "just a string",
])
def test_unsupported_user_parts_are_invalid_requests(part: Any) -> None:
    raises_invalid(chat, [{"role": "user", "content": [part]}])


@pytest.mark.parametrize("messages", [
    [], None, "hi", [{"role": "critic", "content": "x"}], ["not an object"], [{"role": "user", "content": 42}],
    [{"role": "system", "content": {"text": "x"}}],
    [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}],
])
def test_malformed_messages_are_invalid_requests(messages: Any) -> None:
    request = {"model": "m"} | ({"messages": messages} if messages is not None else {})
    raises_invalid(openai_chat_request.parse, request)


def test_tool_messages_with_text_part_arrays_and_assistant_text_parts() -> None:
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "text", "text": "calling"}],
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "out"}, {"type": "text", "text": "put"}]}]
    t = chat(messages)
    assert texts_of(contents(t)[1]) == ["calling"]
    assert responses_of(contents(t)[2]) == [{"id": "c1", "name": "f", "response": {"result": "output"}}]


def test_legacy_functions_and_function_call_messages() -> None:
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "function_call": {"name": "get.weather", "arguments": '{"city": "Oslo"}'}},
                {"role": "function", "name": "get.weather", "content": "rain"}]
    t = chat(messages, functions=[{"name": "get.weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
             function_call={"name": "get.weather"})
    (call,) = calls_of(contents(t)[1])
    assert call["functionCall"]["name"] == "get_weather" and call["functionCall"]["args"] == {"city": "Oslo"}
    (response,) = responses_of(contents(t)[2])
    assert response == {"id": call["functionCall"]["id"], "name": "get_weather", "response": {"result": "rain"}}
    assert t.request["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert t.tool_names == {"get_weather": "get.weather"}


def test_custom_tools_are_dropped_and_function_tools_kept() -> None:
    tools = [{"type": "custom", "custom": {"name": "grammar_tool"}},
             {"type": "function", "function": {"name": "f", "description": "F", "parameters": {"type": "object"}, "strict": True}}]
    t = chat(tools=tools)
    assert t.request["tools"] == [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}, "description": "F"}]}]


def test_the_google_thought_signature_on_a_call_reaches_gemini_only() -> None:
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"},
                     "extra_content": {"google": {"thought_signature": "g-sig"}}},
                    {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"},
                     "extra_content": {"google": {"thought_signature": "g-sig-2"}}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "1"}, {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    gemini = calls_of(contents(chat(messages))[1])
    assert [c.get("thoughtSignature") for c in gemini] == ["g-sig", None]
    claude = chat(messages, model=CLAUDE)
    assert "g-sig" not in json.dumps(claude.request)


def test_parse_does_not_mutate_the_body() -> None:
    request = {"model": "m", "messages": [{"role": "system", "content": "s"}, *HI], "temperature": 1.5,
               "tools": [{"type": "function", "function": {"name": "a.b", "parameters": {"type": "object", "additionalProperties": False}}}]}
    before = copy.deepcopy(request)
    build(openai_chat_request.parse(request), model=CLAUDE, session_key="s", signatures=FakeSignatures())
    assert request == before


# --- limits and sampling (§7.10) ---------------------------------------------------------------


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert generation(chat(max_completion_tokens=500, max_tokens=900))["maxOutputTokens"] == 500
    assert generation(chat(max_tokens=900))["maxOutputTokens"] == 900


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -5, 1.5, "100", True])
def test_bad_token_limits_are_invalid_with_their_param(key: str, value: Any) -> None:
    assert invalid_param(**{key: value}) == key


@pytest.mark.parametrize("n", [2, 0, 5])
def test_n_other_than_one_is_an_invalid_request_on_param_n(n: int) -> None:
    assert invalid_param(n=n) == "n"


def test_n_of_one_is_fine() -> None:
    assert roles(chat(n=1)) == ["user"]


def test_temperature_is_clamped_to_one_for_claude_only() -> None:
    assert generation(chat(model=CLAUDE, temperature=1.7))["temperature"] == 1.0
    assert generation(chat(model=CLAUDE, temperature=0.4))["temperature"] == 0.4
    assert generation(chat(model=GEMINI, temperature=1.7))["temperature"] == 1.7
    assert generation(chat(model=GEMINI, temperature=0))["temperature"] == 0  # a falsy value still passes


def test_seed_and_penalties_go_to_gemini_models_only() -> None:
    fields = {"seed": 7, "presence_penalty": 0.5, "frequency_penalty": -1.0}
    gemini = generation(chat(**fields))
    assert (gemini["seed"], gemini["presencePenalty"], gemini["frequencyPenalty"]) == (7, 0.5, -1.0)
    claude = generation(chat(model=CLAUDE, **fields))
    assert {"seed", "presencePenalty", "frequencyPenalty"}.isdisjoint(claude)


@pytest.mark.parametrize("key", ["presence_penalty", "frequency_penalty"])
def test_penalties_out_of_range_are_invalid(key: str) -> None:
    assert invalid_param(**{key: 2.5}) == key


def test_unsupported_fields_are_ignored() -> None:
    t = chat(logprobs=True, top_logprobs=3, user="u", prompt_cache_key="k", parallel_tool_calls=False,
             stream_options={"include_usage": True}, service_tier="flex")
    text = json.dumps(t.request)
    for leftover in ("logprobs", "prompt_cache_key", "parallel", "stream_options", "service_tier"):
        assert leftover not in text


# --- response_format and stop ----------------------------------------------------------------


def test_response_format_json_object_asks_for_json() -> None:
    config = generation(chat(response_format={"type": "json_object"}))
    assert config["responseMimeType"] == "application/json" and "responseSchema" not in config
    assert "responseMimeType" not in generation(chat(response_format={"type": "text"}))


@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
def test_response_format_json_schema_sends_the_sanitised_schema(model: str) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0}, "note": {"type": ["string", "null"]}},
              "required": ["answer", "note"], "additionalProperties": False, "$defs": {}}
    config = generation(chat(model=model, response_format={"type": "json_schema",
                                                           "json_schema": {"name": "out", "schema": schema, "strict": True}}))
    assert config["responseMimeType"] == "application/json"
    out = config["responseSchema"]
    assert out["required"] == ["answer"] and set(out["properties"]) == {"answer", "note"}
    assert "minimum: 0" in out["properties"]["answer"]["description"]
    for keyword in ("additionalProperties", "$defs", '"minimum"'):
        assert keyword not in json.dumps(out)


def test_response_format_json_schema_without_a_schema_is_invalid() -> None:
    assert invalid_param(response_format={"type": "json_schema", "json_schema": {"name": "x"}}) == "response_format"


@pytest.mark.parametrize(("stop", "expected"), [("END", ("END",)), (["a", "", "b"], ("a", "b")), ("", ()), (None, ())])
def test_stop_becomes_stop_sequences_and_is_not_sent_upstream(stop: Any, expected: tuple[str, ...]) -> None:
    t = chat(stop=stop)
    assert t.stop_sequences == expected
    assert "stopSequences" not in generation(t)


@pytest.mark.parametrize("stop", [5, ["a", 1], {"a": 1}])
def test_a_malformed_stop_is_invalid_on_param_stop(stop: Any) -> None:
    assert invalid_param(stop=stop) == "stop"


# --- reasoning_effort (§7.8) -----------------------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 4096), ("medium", 16384), ("high", 32000),
                                                ("xhigh", 63999), ("max", 63999)])
def test_reasoning_effort_gives_claude_a_budget_below_its_max(effort: str, budget: int) -> None:
    t = chat(model=CLAUDE, reasoning_effort=effort)
    assert generation(t)["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": budget}
    assert budget < generation(t)["maxOutputTokens"] and t.show_thoughts


def test_a_small_limit_is_raised_above_the_effort_budget_for_claude() -> None:
    config = generation(chat(model=CLAUDE, reasoning_effort="low", max_completion_tokens=1000))
    assert config["thinkingConfig"]["thinkingBudget"] == 4096 < config["maxOutputTokens"] <= 64000


@pytest.mark.parametrize(("effort", "level"), [("low", "low"), ("medium", "medium"), ("high", "high"), ("xhigh", "high"),
                                               ("max", "high")])
def test_reasoning_effort_gives_gemini_3_a_level(effort: str, level: str) -> None:
    assert generation(chat(reasoning_effort=effort))["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": level}


@pytest.mark.parametrize("effort", ["minimal", "none"])
def test_minimal_and_none_give_gemini_3_flash_the_minimal_level(effort: str) -> None:
    assert generation(chat(model="gemini-3-flash", reasoning_effort=effort))["thinkingConfig"]["thinkingLevel"] == "minimal"


@pytest.mark.parametrize("model", [CLAUDE_THINKING, CLAUDE, "gemini-2.5-pro"])
def test_reasoning_effort_none_turns_thinking_off(model: str) -> None:
    t = chat(model=model, reasoning_effort="none")
    assert "thinkingConfig" not in generation(t) and not t.show_thoughts


def test_reasoning_effort_none_on_gemini_3_hides_thoughts_at_the_lowest_level() -> None:
    t = chat(reasoning_effort="none")
    assert generation(t)["thinkingConfig"]["includeThoughts"] is False and not t.show_thoughts


@pytest.mark.parametrize(("model", "on"), [(CLAUDE_THINKING, True), ("gemini-2.5-flash-thinking", True), (CLAUDE, False),
                                           ("gemini-2.5-pro", False)])
def test_absent_reasoning_effort_thinks_only_on_thinking_ids(model: str, on: bool) -> None:
    t = chat(model=model)
    assert t.show_thoughts is on
    assert (generation(t).get("thinkingConfig", {}).get("includeThoughts") is True) is on


def test_an_unknown_reasoning_effort_is_invalid_on_its_param() -> None:
    assert invalid_param(reasoning_effort="ultra") == "reasoning_effort"


# --- tool_choice forms ------------------------------------------------------------------------


def test_tool_choice_function_names_the_sanitised_tool() -> None:
    tools = [{"type": "function", "function": {"name": "ns:do.it", "parameters": {"type": "object"}}}]
    t = chat(tools=tools, tool_choice={"type": "function", "function": {"name": "ns:do.it"}})
    assert t.request["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["ns_do_it"]}


def test_allowed_tools_tool_choice_never_forces_a_nameless_function() -> None:
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("a", "b")]
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "required",
                                                         "tools": [{"type": "function", "function": {"name": "a"}}]}}
    config = chat(tools=tools, tool_choice=choice).request["toolConfig"]["functionCallingConfig"]
    assert set(config.get("allowedFunctionNames", ["a"])) <= {"a", "b"}
