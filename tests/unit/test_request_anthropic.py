"""Anthropic Messages request → upstream request (client-protocols.md §2.3, §7; pure).

What every protocol shares is checked in test_request_translation.py; here: Anthropic's own
fields (system blocks, Claude Code's system messages, server tools, tool_result content,
documents, thinking/output_config) and the real Claude Code 2.1.330 requests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.accounts.signatures import Remembered
from daemon.translate import anthropic_request
from daemon.translate.upstream_request import build
from daemon.upstream import models
from tests.unit.test_request_translation import (
    CLAUDE,
    CLAUDE_THINKING,
    GEMINI,
    FakeSignatures,
    assert_well_formed,
    calls_of,
    client_body,
    contents,
    generation,
    raises_invalid,
    responses_of,
    roles,
    system_texts,
    texts_of,
)

pytestmark = pytest.mark.unit


def body(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 8192, "messages": messages} | fields


def translate(request: dict[str, Any], model: str = GEMINI, signatures: Any = None) -> Any:
    t = build(anthropic_request.parse(request), model=model, session_key="s",
              signatures=signatures if signatures is not None else FakeSignatures())
    assert_well_formed(t.request)
    return t


HI = [{"role": "user", "content": "hi"}]
TOOL_TURN = [
    {"role": "user", "content": "write it"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"p": 1}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
]
WRITE_TOOL = {"name": "Write", "description": "write", "input_schema": {"type": "object", "properties": {"p": {}}}}


# --- the real Claude Code requests ----------------------------------------------------------


def test_claude_code_turn_one_builds_with_its_system_message_and_tools() -> None:
    request = client_body("claude-code.default-model.001.json")
    model = models.resolve(request["model"], models.KNOWN_MODELS, ())
    t = translate(request, model=model)
    assert model == CLAUDE_THINKING
    texts = system_texts(t)
    assert len(texts) == 3 and texts[2].startswith("# Environment")  # the role:"system" message comes last
    assert not any(text.startswith("x-anthropic-billing-header:") for text in texts)
    assert roles(t) == ["user"]
    declarations = t.request["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == [tool["name"] for tool in request["tools"]]
    placeholder = next(d for d in declarations if d["name"] == "DeferredToolPlaceholder")
    assert placeholder["parameters"]["required"] == ["_placeholder"]  # no empty object schema for Claude
    assert generation(t) == {"maxOutputTokens": 64000, "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 16384}}
    text = json.dumps(t.request)
    for leftover in ("cache_control", "$schema", "additionalProperties", "defer_loading", "context_management"):
        assert leftover not in text


def test_claude_code_turn_two_replays_its_signed_thinking_first_to_claude() -> None:
    request = client_body("claude-code.sonnet-thinking.002.json")
    t = translate(request, model=models.resolve(request["model"], models.KNOWN_MODELS, ()))
    assert t.model == CLAUDE and roles(t) == ["user", "model", "user"]
    thinking = request["messages"][1]["content"][0]
    model_parts = contents(t)[1]["parts"]
    assert model_parts[0] == {"text": thinking["thinking"], "thought": True, "thoughtSignature": thinking["signature"]}
    assert model_parts[1] == {"text": "I'll write the file."}
    assert model_parts[2]["functionCall"]["id"] == "toolu_stubf804e304d8f14a0a"
    (response,) = responses_of(contents(t)[2])
    assert response["name"] == "Write" and response["response"]["result"].startswith("File created successfully")
    assert generation(t)["thinkingConfig"]["thinkingBudget"] == 31999 < generation(t)["maxOutputTokens"] == 32000


def test_claude_code_turn_two_on_gemini_gets_the_sentinel_not_the_claude_signature() -> None:
    request = client_body("claude-code.sonnet-thinking.002.json")
    claude_sig = request["messages"][1]["content"][0]["signature"]
    known = translate(request, model=GEMINI, signatures=FakeSignatures(families={claude_sig: "claude"}))
    (call,) = calls_of(contents(known)[1])
    assert call["thoughtSignature"] == "skip_thought_signature_validator"
    assert all(not p.get("thought") for p in contents(known)[1]["parts"])


@pytest.mark.parametrize("name", ["claude-code.default-model.001.json", "claude-code.sonnet-thinking.002.json"])
def test_claude_code_agent_sdk_identity_is_reworded(name: str) -> None:
    t = translate(client_body(name), model=GEMINI)
    assert not any("Claude Agent SDK" in text for text in system_texts(t))


# --- system ---------------------------------------------------------------------------------


def test_system_as_a_string_and_as_blocks_with_cache_control() -> None:
    assert system_texts(translate(body(HI, system="be brief"))) == ["be brief"]
    blocks = [{"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "two"},
              {"type": "image", "source": {}}]
    t = translate(body(HI, system=blocks))
    assert system_texts(t) == ["one", "two"] and "cache_control" not in json.dumps(t.request)


def test_claude_code_system_messages_join_the_system_text_in_order() -> None:
    messages = [{"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "env", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": "yes"}, {"role": "system", "content": "later"},
                {"role": "user", "content": "go"}]
    t = translate(body(messages, system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=1;"},
                                         {"type": "text", "text": "top"}]))
    assert system_texts(t) == ["top", "env", "later"]
    assert roles(t) == ["user", "model", "user"]


@pytest.mark.parametrize("system", [42, {"text": "x"}])
def test_a_malformed_system_is_an_invalid_request(system: Any) -> None:
    raises_invalid(translate, body(HI, system=system))


# --- request validation -----------------------------------------------------------------------


@pytest.mark.parametrize("request_body", [
    [], {"max_tokens": 10}, {"max_tokens": 10, "messages": []}, {"messages": HI}, {"max_tokens": 0, "messages": HI},
    {"max_tokens": True, "messages": HI}, {"max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]},
    {"max_tokens": 10, "messages": [{"role": "user", "content": 5}]},
    {"max_tokens": 10, "messages": [{"role": "user", "content": ["not a block"]}]},
    {"max_tokens": 10, "messages": HI, "stop_sequences": "END"},
    {"max_tokens": 10, "messages": HI, "tools": {"name": "x"}},
    {"max_tokens": 10, "messages": HI, "tools": [{"description": "no name"}]},
])
def test_malformed_requests_are_invalid(request_body: Any) -> None:
    raises_invalid(anthropic_request.parse, request_body)


def test_translate_is_parse_then_build_and_does_not_mutate_the_body() -> None:
    request = body(TOOL_TURN, tools=[WRITE_TOOL], system="s", temperature=0.5)
    before = copy.deepcopy(request)
    t = translate(request)
    again = build(anthropic_request.parse(request), model=GEMINI, session_key="s", signatures=FakeSignatures())
    assert t == again and request == before


# --- content ---------------------------------------------------------------------------------


def test_tool_results_with_blocks_errors_and_images() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}},
                                          {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t2", "content": "command not found", "is_error": True},
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "line 1"}, image,
                                                                     {"type": "text", "text": "line 2"}],
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "please continue"}]},
    ]
    t = translate(body(messages))
    last = contents(t)[2]["parts"]
    assert last == [
        {"functionResponse": {"id": "t1", "name": "Read", "response": {"result": "line 1\nline 2"}}},
        {"functionResponse": {"id": "t2", "name": "Bash", "response": {"error": "command not found"}}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},  # after all responses (Claude wants them contiguous)
        {"text": "please continue"},
    ]


def test_search_result_blocks_in_a_tool_result_keep_their_text() -> None:
    search = {"type": "search_result", "source": "https://example.com/fr", "title": "France",
              "content": [{"type": "text", "text": "Paris is the capital."}]}
    messages = TOOL_TURN[:2] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                              "content": [search]}]}]
    (response,) = responses_of(contents(translate(body(messages)))[2])
    assert "Paris is the capital." in response["response"]["result"]


def test_an_empty_tool_result_is_an_empty_result_not_an_empty_text() -> None:
    messages = TOOL_TURN[:2] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}]
    (response,) = responses_of(contents(translate(body(messages)))[2])
    assert response["response"] == {"result": ""}


def test_documents_and_text_sources() -> None:
    content = [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
               {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
               {"type": "text", "text": "summarise"}]
    t = translate(body([{"role": "user", "content": content}]))
    assert contents(t)[0]["parts"] == [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                                       {"text": "plain words"}, {"text": "summarise"}]


def test_redacted_thinking_unsigned_thinking_and_server_tool_blocks_are_dropped() -> None:
    assistant = [{"type": "redacted_thinking", "data": "xyz"}, {"type": "thinking", "thinking": "unsigned"},
                 {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "q"}},
                 {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []},
                 {"type": "text", "text": "found it"}]
    t = translate(body([{"role": "user", "content": "search"}, {"role": "assistant", "content": assistant},
                        {"role": "user", "content": "thanks"}]), model=CLAUDE)
    assert contents(t)[1]["parts"] == [{"text": "found it"}]


def test_call_arguments_and_results_are_never_sanitised() -> None:
    args = {"$ref": "#/x", "const": 1, "cache_control": {"type": "ephemeral"}, "default": None}
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Write", "input": args}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": '{"$ref": 1}'}]}]
    t = translate(body(messages, tools=[WRITE_TOOL]))
    assert calls_of(contents(t)[1])[0]["functionCall"]["args"] == args
    assert responses_of(contents(t)[2])[0]["response"] == {"result": '{"$ref": 1}'}


def test_claude_gets_thinking_first_even_when_the_client_put_text_first() -> None:
    assistant = [{"type": "text", "text": "Let me look."}, {"type": "thinking", "thinking": "hmm", "signature": "sig-c"},
                 {"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]
    t = translate(body([{"role": "user", "content": "go"}, {"role": "assistant", "content": assistant},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]),
                  model=CLAUDE_THINKING)
    assert [list(p) for p in contents(t)[1]["parts"]] == [["text", "thought", "thoughtSignature"], ["text"],
                                                          ["functionCall"]]


def test_the_store_restores_thinking_only_when_the_client_dropped_it() -> None:
    store = FakeSignatures(tools={"toolu_1": Remembered("claude", "stored", "stored thinking")})
    restored = translate(body(TOOL_TURN), model=CLAUDE_THINKING, signatures=store)
    assert contents(restored)[1]["parts"][0] == {"text": "stored thinking", "thought": True, "thoughtSignature": "stored"}
    kept = copy.deepcopy(TOOL_TURN)
    kept[1]["content"].insert(0, {"type": "thinking", "thinking": "client thinking", "signature": "client-sig"})
    t = translate(body(kept), model=CLAUDE_THINKING, signatures=store)
    thoughts = [p for p in contents(t)[1]["parts"] if p.get("thought")]
    assert thoughts == [{"text": "client thinking", "thought": True, "thoughtSignature": "client-sig"}]


def test_claude_thinking_in_a_tool_loop_without_signed_thinking_is_made_valid() -> None:
    t = translate(body(TOOL_TURN, tools=[WRITE_TOOL], thinking={"type": "enabled", "budget_tokens": 2048}),
                  model=CLAUDE_THINKING)
    last_model = [c for c in contents(t) if c["role"] == "model"][-1]
    starts_with_thinking = bool(last_model["parts"][0].get("thought"))
    loop_closed = not calls_of([c for c in contents(t) if c["role"] == "model"][-1])
    assert "thinkingConfig" not in generation(t) or starts_with_thinking or loop_closed


# --- tools ---------------------------------------------------------------------------------


def test_server_tools_are_dropped_and_custom_tools_kept() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
             {"type": "bash_20250124", "name": "bash"},
             {"type": "custom", "name": "Custom", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
             dict(WRITE_TOOL, cache_control={"type": "ephemeral"}, strict=True)]
    t = translate(body(HI, tools=tools))
    assert [d["name"] for d in t.request["tools"][0]["functionDeclarations"]] == ["Custom", "Write"]
    assert t.tool_names == {"Custom": "Custom", "Write": "Write"}
    only_server = translate(body(HI, tools=tools[:2]))
    assert "tools" not in only_server.request


def test_a_tool_without_schema_is_an_object_with_the_claude_placeholder() -> None:
    t = translate(body(HI, tools=[{"name": "Ping"}]), model=CLAUDE)
    (declaration,) = t.request["tools"][0]["functionDeclarations"]
    assert declaration == {"name": "Ping", "parameters": {
        "type": "object", "properties": {"_placeholder": {"type": "boolean", "description": "Placeholder. Always pass true."}},
        "required": ["_placeholder"]}}
    gemini = translate(body(HI, tools=[{"name": "Ping"}]))
    assert gemini.request["tools"][0]["functionDeclarations"][0]["parameters"] == {"type": "object"}


def test_tool_choice_with_disable_parallel_tool_use_is_still_auto() -> None:
    t = translate(body(HI, tools=[WRITE_TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True}))
    assert t.request["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


# --- thinking (§7.8) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("thinking", "output_config", "max_tokens", "expected"), [
    ({"type": "enabled", "budget_tokens": 5000}, None, 20000, (5000, 20000)),
    ({"type": "enabled", "budget_tokens": 100}, None, 20000, (1024, 20000)),
    ({"type": "enabled", "budget_tokens": 31999}, None, 32000, (31999, 32000)),
    ({"type": "enabled", "budget_tokens": 20000}, None, 4000, (20000, 28192)),
    ({"type": "enabled", "budget_tokens": 200000}, None, 4000, (63999, 64000)),
    ({"type": "adaptive"}, None, 128000, (32000, 64000)),
    ({"type": "adaptive", "budget_tokens": 0}, {"effort": "low"}, 128000, (4096, 64000)),
    ({"type": "adaptive", "display": "omitted"}, {"effort": "medium"}, 128000, (16384, 64000)),
    ({"type": "adaptive"}, {"effort": "high"}, 128000, (32000, 64000)),
    ({"type": "adaptive"}, {"effort": "xhigh"}, 128000, (63999, 64000)),
    ({"type": "adaptive"}, {"effort": "max"}, 128000, (63999, 64000)),
])
def test_claude_thinking_budgets(thinking: dict[str, Any], output_config: dict[str, Any] | None, max_tokens: int,
                                 expected: tuple[int, int]) -> None:
    extra = {"output_config": output_config} if output_config else {}
    t = translate(body(HI, max_tokens=max_tokens, thinking=thinking, **extra), model=CLAUDE)
    config = generation(t)
    assert (config["thinkingConfig"]["thinkingBudget"], config["maxOutputTokens"]) == expected
    assert config["thinkingConfig"]["includeThoughts"] is True and t.show_thoughts


@settings(max_examples=200, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["enabled", "adaptive"]), budget=st.integers(0, 300_000), max_tokens=st.integers(1, 300_000),
       effort=st.sampled_from([None, "low", "medium", "high", "xhigh", "max"]))
def test_claude_budget_always_stays_below_max_output_tokens(kind: str, budget: int, max_tokens: int,
                                                            effort: str | None) -> None:
    request = body(HI, max_tokens=max_tokens, thinking={"type": kind, "budget_tokens": budget},
                   **({"output_config": {"effort": effort}} if effort else {}))
    config = generation(translate(request, model=CLAUDE_THINKING))
    assert 1024 <= config["thinkingConfig"]["thinkingBudget"] < config["maxOutputTokens"] <= 64000
    if kind == "enabled" and 1024 <= budget < min(max_tokens, 64000):
        assert (config["thinkingConfig"]["thinkingBudget"], config["maxOutputTokens"]) == (budget, min(max_tokens, 64000))


@pytest.mark.parametrize("thinking", [None, {"type": "disabled"}])
def test_thinking_off_on_claude_sends_no_thinking_config(thinking: dict[str, Any] | None) -> None:
    t = translate(body(HI, **({"thinking": thinking} if thinking else {}), temperature=0.3, top_k=5), model=CLAUDE)
    assert generation(t) == {"maxOutputTokens": 8192, "temperature": 0.3, "topK": 5} and not t.show_thoughts


@pytest.mark.parametrize(("model", "thinking", "output_config", "expected"), [
    ("gemini-3-flash", {"type": "adaptive"}, {"effort": "medium"}, {"includeThoughts": True, "thinkingLevel": "medium"}),
    ("gemini-3-flash", {"type": "adaptive"}, {"effort": "max"}, {"includeThoughts": True, "thinkingLevel": "high"}),
    ("gemini-3-flash", {"type": "adaptive"}, None, {"includeThoughts": True, "thinkingLevel": "high"}),
    ("gemini-3-flash", {"type": "enabled", "budget_tokens": 2000}, None, {"includeThoughts": True, "thinkingLevel": "low"}),
    ("gemini-3-flash", {"type": "enabled", "budget_tokens": 10000}, None,
     {"includeThoughts": True, "thinkingLevel": "medium"}),
    ("gemini-3.1-pro-low", {"type": "disabled"}, None, {"includeThoughts": False, "thinkingLevel": "low"}),
    ("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 50000}, None, {"includeThoughts": True, "thinkingBudget": 32768}),
    ("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 10}, None, {"includeThoughts": True, "thinkingBudget": 128}),
    ("gemini-2.5-pro", {"type": "adaptive"}, None, {"includeThoughts": True, "thinkingBudget": -1}),
    ("gemini-2.5-flash-thinking", {"type": "enabled", "budget_tokens": 99999}, None,
     {"includeThoughts": True, "thinkingBudget": 24576}),
])
def test_gemini_thinking_configs(model: str, thinking: dict[str, Any], output_config: dict[str, Any] | None,
                                 expected: dict[str, Any]) -> None:
    extra = {"output_config": output_config} if output_config else {}
    config = generation(translate(body(HI, thinking=thinking, **extra), model=model))
    assert config["thinkingConfig"] == expected
    assert not ("thinkingLevel" in config["thinkingConfig"] and "thinkingBudget" in config["thinkingConfig"])


# --- sampling, stops, output format (§7.9, §7.10) ----------------------------------------------


def test_stop_sequences_are_kept_for_the_daemon_and_not_sent_upstream() -> None:
    t = translate(body(HI, stop_sequences=["END", "", "###"]))
    assert t.stop_sequences == ("END", "###")
    assert "stopSequences" not in generation(t) and "END" not in json.dumps(t.request)


def test_sampling_for_gemini_and_top_k() -> None:
    config = generation(translate(body(HI, temperature=0, top_p=1, top_k=40)))
    assert (config["temperature"], config["topP"], config["topK"]) == (0, 1, 40)


def test_output_config_format_asks_for_json_with_the_sanitised_schema() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    config = generation(translate(body(HI, output_config={"format": {"type": "json_schema", "schema": schema}})))
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["properties"] == {"name": {"type": "string"}}
    assert "additionalProperties" not in json.dumps(config["responseSchema"])


def test_metadata_and_other_client_only_fields_never_reach_the_upstream() -> None:
    request = body(HI, metadata={"user_id": '{"session_id": "abc"}'}, service_tier="auto", container="c",
                   context_management={"edits": []}, cache_control={"type": "ephemeral"}, mcp_servers=[])
    text = json.dumps(translate(request).request)
    for leftover in ("metadata", "user_id", "service_tier", "container", "context_management", "cache_control", "mcp"):
        assert leftover not in text
    assert texts_of(contents(translate(request))[0]) == ["hi"]
