"""Native Gemini generateContent request → upstream request (client-protocols.md §5.3, §7; pure).

A near pass-through: only what the upstream refuses or the daemon decides is changed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from daemon.translate.gemini_request import prepare
from daemon.translate.upstream_request import session_id
from tests.unit.test_request_translation import CLAUDE, GEMINI, raises_invalid

pytestmark = pytest.mark.unit

CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]


def gemini(model: str = GEMINI, **fields: Any) -> dict[str, Any]:
    return prepare({"contents": CONTENTS} | fields, model=model, session_key="s")


def test_contents_pass_through_unchanged_with_signatures_and_a_session_id() -> None:
    history = [{"role": "user", "parts": [{"text": "go"}]},
               {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"$ref": 1}}, "thoughtSignature": "sig"},
                                           {"text": "", "thoughtSignature": "trailing"}]},
               {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"const": 2}}}]}]
    request = prepare({"contents": history}, model=GEMINI, session_key="conversation-1")
    assert request["contents"] == history
    assert request["sessionId"] == session_id("conversation-1")
    assert set(request) == {"contents", "generationConfig", "sessionId"}


def test_a_string_system_instruction_is_wrapped_in_a_user_content() -> None:
    assert gemini(systemInstruction="be brief")["systemInstruction"] == {"role": "user", "parts": [{"text": "be brief"}]}


def test_a_system_content_gets_role_user_and_loses_blank_parts_and_identity_lines() -> None:
    instruction = {"role": "system", "parts": [
        {"text": "x-anthropic-billing-header: cc_version=1;"}, {"text": "  "},
        {"text": "You are Codex, an agent based on GPT-5. Be careful."}, {"inlineData": {"mimeType": "image/png", "data": "AA"}}]}
    assert gemini(systemInstruction=instruction)["systemInstruction"] == {"role": "user", "parts": [
        {"text": "You are a coding agent. Be careful."}, {"inlineData": {"mimeType": "image/png", "data": "AA"}}]}


def test_a_system_instruction_with_nothing_left_is_omitted() -> None:
    assert "systemInstruction" not in gemini(systemInstruction={"parts": [{"text": ""}]})
    assert "systemInstruction" not in gemini(systemInstruction="")


def test_snake_case_top_level_keys_are_accepted() -> None:
    request = gemini(system_instruction={"parts": [{"text": "sys"}]}, generation_config={"temperature": 0.2},
                     tool_config={"functionCallingConfig": {"mode": "ANY"}},
                     safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}])
    assert request["systemInstruction"] == {"role": "user", "parts": [{"text": "sys"}]}
    assert request["generationConfig"]["temperature"] == 0.2
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert request["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert not any("_" in key for key in request)


def test_unknown_top_level_fields_are_not_copied() -> None:
    request = gemini(cachedContent="cachedContents/abc", labels={"team": "x"}, model="models/gemini-3-flash",
                     cached_content="x", extra={"a": 1})
    assert set(request) == {"contents", "generationConfig", "sessionId"}


@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
def test_parameters_json_schema_becomes_sanitised_parameters(model: str) -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "properties": {"q": {"type": "string", "minLength": 1}, "n": {"type": ["integer", "null"], "default": 3}},
              "required": ["q", "n"]}
    tools = [{"functionDeclarations": [{"name": "search", "description": "Search", "parametersJsonSchema": schema}]}]
    (declaration,) = gemini(model=model, tools=tools)["tools"][0]["functionDeclarations"]
    assert set(declaration) == {"name", "description", "parameters"}
    parameters = declaration["parameters"]
    assert parameters["required"] == ["q"] and parameters["properties"]["n"]["type"] == "integer"
    for keyword in ("$schema", "additionalProperties", '"minLength"', '"default"'):
        assert keyword not in json.dumps(parameters)
    assert tools[0]["functionDeclarations"][0]["parametersJsonSchema"] is schema  # the client's body is untouched


def test_parameters_are_sanitised_and_claude_gets_the_placeholder() -> None:
    tools = [{"functionDeclarations": [{"name": "ping", "parameters": {"type": "OBJECT", "properties": {}}}, {"name": "bare"}]}]
    gemini_declarations = gemini(tools=tools)["tools"][0]["functionDeclarations"]
    assert [d["parameters"] for d in gemini_declarations] == [{"type": "object"}, {"type": "object"}]
    claude_declarations = gemini(model=CLAUDE, tools=tools)["tools"][0]["functionDeclarations"]
    assert all(d["parameters"]["required"] == ["_placeholder"] for d in claude_declarations)


def test_functions_spread_over_tools_join_one_entry_and_other_kinds_drop() -> None:
    tools = [{"functionDeclarations": [{"name": "a"}]}, {"googleSearch": {}}, {"functionDeclarations": [{"name": "b"}]}]
    request = gemini(tools=tools)
    assert request["tools"] == [{"functionDeclarations": [{"name": "a", "parameters": {"type": "object"}},
                                                          {"name": "b", "parameters": {"type": "object"}}]}]


def test_tools_without_functions_pass_as_they_are() -> None:
    tools = [{"googleSearch": {}}, {"codeExecution": {}}]
    assert gemini(tools=tools)["tools"] == tools


@pytest.mark.parametrize("fields", [
    {"tools": {"functionDeclarations": []}}, {"tools": [{"functionDeclarations": [{"description": "no name"}]}]},
    {"systemInstruction": ["a"]}, {"systemInstruction": {"text": "no parts"}},
])
def test_malformed_fields_are_invalid_requests(fields: dict[str, Any]) -> None:
    raises_invalid(gemini, **fields)


@pytest.mark.parametrize("body", [{}, {"contents": []}, {"contents": "hi"}])
def test_missing_contents_is_an_invalid_request(body: dict[str, Any]) -> None:
    raises_invalid(prepare, body, model=GEMINI, session_key="s")


@pytest.mark.parametrize(("model", "kept", "dropped"), [
    ("gemini-3-flash", "thinkingLevel", "thinkingBudget"), ("gemini-pro-agent", "thinkingLevel", "thinkingBudget"),
    ("gemini-2.5-pro", "thinkingBudget", "thinkingLevel"), (CLAUDE, "thinkingBudget", "thinkingLevel"),
])
def test_a_level_and_a_budget_together_keep_only_one(model: str, kept: str, dropped: str) -> None:
    config = {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH", "thinkingBudget": 2048}}
    thinking = gemini(model=model, generationConfig=config)["generationConfig"]["thinkingConfig"]
    assert kept in thinking and dropped not in thinking and thinking["includeThoughts"] is True
    assert config["thinkingConfig"]["thinkingBudget"] == 2048  # not mutated


def test_a_lone_level_or_budget_passes_through() -> None:
    assert gemini(generationConfig={"thinkingConfig": {"thinkingLevel": "LOW"}})["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "LOW"}
    assert gemini(model="gemini-2.5-pro", generationConfig={"thinkingConfig": {"thinkingBudget": -1}})[
        "generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1}


@pytest.mark.parametrize(("model", "asked", "sent"), [
    (GEMINI, 100, 100), (GEMINI, 10**6, 65535), (CLAUDE, 10**6, 64000), (GEMINI, None, 65535), (GEMINI, 0, 65535),
    (GEMINI, -4, 65535), (GEMINI, "1000", 65535), ("gpt-oss-120b-medium", 10**6, 32768),
])
def test_max_output_tokens_is_capped_at_the_models_limit(model: str, asked: Any, sent: int) -> None:
    config = {} if asked is None else {"maxOutputTokens": asked}
    assert gemini(model=model, generationConfig=config)["generationConfig"]["maxOutputTokens"] == sent


def test_the_rest_of_generation_config_passes_through() -> None:
    config = {"temperature": 0.1, "topK": 3, "stopSequences": ["END"], "responseMimeType": "application/json",
              "candidateCount": 1, "seed": 9}
    assert gemini(generationConfig=dict(config))["generationConfig"] == config | {"maxOutputTokens": 65535}


def test_prepare_does_not_mutate_the_body() -> None:
    body = {"contents": CONTENTS, "system_instruction": "You are Codex, an agent based on GPT-5.",
            "generationConfig": {"maxOutputTokens": 10**6, "thinkingConfig": {"thinkingLevel": "low", "thinkingBudget": 5}},
            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object", "title": "T"}}]}]}
    before = copy.deepcopy(body)
    prepare(body, model=GEMINI, session_key="s")
    assert body == before
