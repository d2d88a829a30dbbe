"""Schema sanitiser: real Claude Code / Codex tool schemas, one test per doc rule, properties.

The validator below is written from the docs (client-protocols.md §8, upstream-cloudcode.md
§4.5), not from the module, so a sanitiser bug cannot hide behind a shared helper.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.translate import schema as schema_module
from daemon.translate.schema import PLACEHOLDER_PROPERTY, sanitize_function_name, sanitize_schema

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent.parent / "data" / "schemas"
REAL = sorted((DATA / "claude-code").glob("*.json")) + sorted((DATA / "codex").glob("*.json"))
MCP = sorted((DATA / "mcp").glob("*.json"))

# Keywords the upstream rejects with 400 "Unknown name …" or "Invalid value … Schema" (CP §8, UP §4.5).
FORBIDDEN = {
    "const", "$ref", "$defs", "definitions", "$schema", "$id", "$comment", "default", "examples",
    "title", "additionalProperties", "propertyNames", "patternProperties", "if", "then", "else",
    "not", "deprecated", "readOnly", "writeOnly", "format", "unevaluatedProperties",
    "unevaluatedItems", "dependentRequired", "dependentSchemas", "minContains", "maxContains",
    "contentMediaType", "contentEncoding", "enumDescriptions", "enumTitles", "prefill", "encrypted",
    "allOf", "anyOf", "oneOf", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems",
}
TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def assert_valid(schema: Any, *, for_claude: bool, path: str = "$") -> None:
    """Every node is a dict the upstream accepts, recursively."""
    assert isinstance(schema, dict), f"{path}: subschema is {schema!r}, not an object"
    bad = {k for k in schema if k in FORBIDDEN or k.startswith("x-")}
    assert not bad, f"{path}: forbidden keywords {bad}"
    assert isinstance(schema.get("type"), str) and schema["type"] in TYPES, f"{path}: type {schema.get('type')!r}"
    if "description" in schema:
        assert isinstance(schema["description"], str), path
    if "enum" in schema:
        assert schema["enum"] and all(isinstance(v, str) for v in schema["enum"]), f"{path}: enum"
    if schema["type"] == "array":
        assert_valid(schema.get("items"), for_claude=for_claude, path=path + ".items")
    else:
        assert "items" not in schema, path
    if schema["type"] == "object":
        properties = schema.get("properties", {})
        assert isinstance(properties, dict), path
        if for_claude:
            assert properties, f"{path}: object without properties under Claude VALIDATED mode"
        required = schema.get("required", [])
        assert required != [] or "required" not in schema, f"{path}: empty required"
        assert len(set(required)) == len(required), f"{path}: duplicate required"
        assert set(required) <= set(properties), f"{path}: required names missing properties"
        for name, sub in properties.items():
            assert_valid(sub, for_claude=for_claude, path=f"{path}.properties[{name!r}]")
    else:
        assert "properties" not in schema and "required" not in schema, path


def assert_same_property_names(before: Any, after: dict, *, for_claude: bool, path: str = "$") -> None:
    """`properties` keys survive exactly (only the placeholder may be added), recursively."""
    if not isinstance(before, dict):
        return
    if isinstance(before.get("properties"), dict):
        expected = {name for name, sub in before["properties"].items() if sub is not False}
        if not expected and for_claude:
            expected = {PLACEHOLDER_PROPERTY}
        assert set(after.get("properties", {})) == expected, path
        for name in expected - {PLACEHOLDER_PROPERTY}:
            assert_same_property_names(before["properties"][name], after["properties"][name],
                                       for_claude=for_claude, path=f"{path}.{name}")
    if isinstance(before.get("items"), dict):
        assert_same_property_names(before["items"], after["items"], for_claude=for_claude, path=path + "[]")


@pytest.mark.parametrize("bad", [
    {"type": "object", "properties": {"a": {"type": "string", "const": "x"}}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
    {"type": "object", "properties": {"a": {"type": "array"}}},
    {"type": "object", "properties": {"a": True}},
    {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
    {"type": "object", "properties": {"a": {"type": "integer", "enum": [1]}}},
    {"type": "object", "properties": {"a": {"type": "string", "x-order": 1}}},
    {"type": "object"},
], ids=["const", "required", "items", "boolean", "type-array", "enum", "x-key", "empty-object"])
def test_the_validator_catches_what_the_upstream_rejects(bad: dict) -> None:
    with pytest.raises(AssertionError):
        assert_valid(bad, for_claude=True)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def clean(schema: Any, for_claude: bool = True) -> dict:
    return sanitize_schema(schema, for_claude=for_claude)


def prop(schema: Any, for_claude: bool = True) -> dict:
    """`schema` sanitised as the one property of an object."""
    return clean({"type": "object", "properties": {"p": schema}}, for_claude)["properties"]["p"]


# --- golden-style checks on what real clients send -----------------------------------------------


def test_the_real_schemas_are_all_there() -> None:
    names = {p.stem for p in REAL}
    assert len(list((DATA / "claude-code").glob("*.json"))) == 12
    assert {"Agent", "Bash", "Edit", "Read", "Write", "DeferredToolPlaceholder"} <= names
    assert {"exec_command", "request_user_input", "get_goal", "multi_agent_v1.spawn_agent"} <= names


@pytest.mark.parametrize("for_claude", [True, False], ids=["claude", "gemini"])
@pytest.mark.parametrize("path", REAL + MCP, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_schema_comes_out_valid_idempotent_and_unmutated(path: Path, for_claude: bool) -> None:
    original = load(path)
    before = copy.deepcopy(original)
    out = clean(original, for_claude)
    assert original == before
    assert_valid(out, for_claude=for_claude)
    assert clean(out, for_claude) == out
    json.dumps(out)  # plain JSON all the way down


@pytest.mark.parametrize("for_claude", [True, False], ids=["claude", "gemini"])
@pytest.mark.parametrize("path", [*REAL, DATA / "mcp" / "keyword_names.json"], ids=lambda p: p.stem)
def test_real_schemas_keep_every_property_name(path: Path, for_claude: bool) -> None:
    original = load(path)
    assert_same_property_names(original, clean(original, for_claude), for_claude=for_claude)


def test_claude_code_read_golden() -> None:
    original = load(DATA / "claude-code" / "Read.json")
    out = clean(original)
    assert out["properties"] == {
        "file_path": {"type": "string", "description": "The absolute path to the file to read"},
        "offset": {"type": "integer", "description": "The line number to start reading from. Only provide "
                   "if the file is too large to read at once (minimum: 0)"},
        "limit": {"type": "integer", "description": "The number of lines to read. Only provide if the file "
                  "is too large to read at once. (exclusiveMinimum: 0)"},
        "pages": original["properties"]["pages"],  # already clean: untouched
        "allow_large": original["properties"]["allow_large"],
    }
    assert out["required"] == ["file_path"]
    assert out["description"] == "(No extra properties allowed)"


def test_codex_nested_objects_and_arrays_keep_their_shape() -> None:
    out = clean(load(DATA / "codex" / "request_user_input.json"))
    question = out["properties"]["questions"]["items"]
    assert question["required"] == ["id", "header", "question", "options"]
    option = question["properties"]["options"]["items"]
    assert option == {
        "type": "object",
        "description": "(No extra properties allowed)",
        "properties": {
            "description": {"type": "string",
                            "description": "One short sentence explaining impact/tradeoff if selected."},
            "label": {"type": "string", "description": "User-facing label (1-5 words)."},
        },
        "required": ["label", "description"],
    }


def test_codex_empty_parameters_get_the_placeholder_only_for_claude() -> None:
    schema = load(DATA / "codex" / "get_goal.json")  # {"properties": {}, "required": [], ...}
    assert clean(schema, for_claude=False) == {"type": "object", "description": "(No extra properties allowed)"}
    assert clean(schema)["properties"] == {
        PLACEHOLDER_PROPERTY: {"type": "boolean", "description": "Placeholder. Always pass true."}}
    assert clean(schema)["required"] == [PLACEHOLDER_PROPERTY]


# --- one test per rule ---------------------------------------------------------------------------


def test_const_becomes_a_one_value_enum() -> None:
    assert prop({"const": "fast", "description": "Mode"}) == {
        "type": "string", "description": "Mode", "enum": ["fast"]}
    assert prop({"type": "integer", "const": 3, "enum": [1, 2]})["enum"] == ["3"]  # const wins


def test_default_examples_and_format_become_hints() -> None:
    assert prop({"type": "boolean", "default": False, "description": "Replace all"}) == {
        "type": "boolean", "description": "Replace all (default: false)"}
    assert prop({"type": "string", "examples": ["a", "b", "c", "d"]})["description"] == "(examples: a, b, c)"
    assert prop({"type": "string", "format": "uri"}) == {"type": "string", "description": "(format: uri)"}


def test_constraints_become_hints_and_huge_bounds_are_dropped() -> None:
    out = prop({"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991, "multipleOf": 5})
    assert out == {"type": "integer", "description": "(multipleOf: 5)"}
    out = prop({"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[a-z]+$"})
    assert out["description"] == "(minLength: 1; maxLength: 40; pattern: ^[a-z]+$)"
    assert prop({"type": "array", "items": {"type": "string"}, "uniqueItems": False}) == {
        "type": "array", "items": {"type": "string"}}


@pytest.mark.parametrize("keyword", [
    "propertyNames", "patternProperties", "deprecated", "readOnly", "writeOnly", "title", "$comment",
    "$schema", "$id", "contentMediaType", "contentEncoding", "unevaluatedProperties", "dependentRequired",
    "enumDescriptions", "x-mcp-header", "x-google-enum-descriptions",
])
def test_rejected_keywords_are_dropped_without_a_trace(keyword: str) -> None:
    value = {"pattern": "^[a-z]+$"} if keyword in ("propertyNames", "patternProperties") else True
    schema = {"type": "object", "properties": {"a": {"type": "string", keyword: value}}, keyword: value}
    assert clean(schema, for_claude=False) == {"type": "object", "properties": {"a": {"type": "string"}}}


def test_local_refs_are_inlined_from_defs_and_definitions() -> None:
    out = clean(load(DATA / "mcp" / "refs.json"))
    assert out["properties"]["home"]["description"] == "Where you live"  # sibling keywords win
    assert out["properties"]["home"]["properties"]["country"]["enum"] == ["DE", "FR", "US"]
    assert out["properties"]["home"]["required"] == ["street"]
    assert out["properties"]["work"]["properties"].keys() == {"street", "country"}
    assert out["properties"]["external"]["description"] == "See: thing.json"
    assert out["properties"]["missing"]["description"] == "See: Nope"


def test_recursive_refs_terminate_after_one_level() -> None:
    tree = clean(load(DATA / "mcp" / "refs.json"), for_claude=False)["properties"]["tree"]
    assert tree["properties"]["label"] == {"type": "string"}
    assert tree["properties"]["children"]["items"] == {"type": "object", "description": "See: TreeNode"}
    root = clean({"type": "object", "properties": {"self": {"$ref": "#"}, "loop": {"$ref": "#/properties/loop"}}},
                 for_claude=False)
    assert root["properties"]["self"]["properties"]["self"] == {"type": "object", "description": "See: #"}
    assert root["properties"]["loop"] == {"type": "object", "description": "See: loop"}


def test_enum_like_unions_become_one_enum() -> None:
    out = clean(load(DATA / "mcp" / "combinators.json"))["properties"]["color"]
    assert out == {"type": "string", "description": "Pick one (Allowed: red, green, blue)",
                   "enum": ["red", "green", "blue"]}
    assert prop({"anyOf": [{"const": 1}, {"const": 2}, {"type": "null"}]}) == {
        "type": "integer", "description": "(Allowed: 1, 2; nullable)", "enum": ["1", "2"]}


def test_object_unions_keep_the_best_branch_and_say_what_else_is_accepted() -> None:
    out = clean(load(DATA / "mcp" / "combinators.json"))
    target = out["properties"]["target"]
    assert target["type"] == "object" and target["required"] == ["host"]
    assert target["properties"].keys() == {"host", "port"}
    assert target["description"] == "Where to send it (Accepts: string | object; nullable)"
    assert "target" not in out["required"]  # a nullable property is optional
    one_of = prop({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]})
    assert one_of == {"type": "array", "description": "(Accepts: string | array)", "items": {"type": "integer"}}


def test_union_on_an_object_with_properties_keeps_the_parent() -> None:
    both = {"a": {"type": "string"}, "b": {"type": "string"}}
    out = prop({"type": "object", "description": "Either", "properties": both,
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}]})
    assert out == {"type": "object", "description": "Either", "properties": both, "required": ["a"]}


def test_all_of_merges_properties_and_required() -> None:
    record = clean(load(DATA / "mcp" / "combinators.json"))["properties"]["record"]
    assert record == {"type": "object", "properties": {
        "id": {"type": "string"},
        "created": {"type": "string", "description": "(format: date-time)"},
    }, "required": ["id", "created"]}
    x_string, x_integer = {"properties": {"x": {"type": "string"}}}, {"properties": {"x": {"type": "integer"}}}
    later_wins = prop({"properties": {"y": {"type": "boolean"}}, "allOf": [x_string, x_integer]})
    assert later_wins["properties"] == {"y": {"type": "boolean"}, "x": {"type": "integer"}}


def test_boolean_subschemas() -> None:
    properties = {"any": True, "none": False, "list": {"type": "array", "items": True}}
    out = clean({"type": "object", "required": ["any", "none"], "properties": properties}, for_claude=False)
    assert out == {"type": "object", "properties": {
        "any": {"type": "string", "description": "(any type)"},
        "list": {"type": "array", "items": {"type": "string", "description": "(any type)"}},
    }, "required": ["any"]}


def test_type_arrays_and_nullable() -> None:
    out = clean({"type": "object", "required": ["a", "b", "c", "d"], "properties": {
        "a": {"type": ["string", "null"], "description": "A"},
        "b": {"type": "number", "nullable": True},
        "c": {"type": ["integer", "string"]},
        "d": {"type": "null"},
    }})
    assert out["properties"] == {
        "a": {"type": "string", "description": "A (nullable)"},
        "b": {"type": "number", "description": "(nullable)"},
        "c": {"type": "integer", "description": "(Accepts: integer | string)"},
        "d": {"type": "string", "description": "(nullable)"},
    }
    assert out["required"] == ["c"]


def test_types_are_lower_case_json_schema_names() -> None:
    assert clean({"type": "OBJECT", "properties": {"n": {"type": "Integer"}}}, for_claude=False) == {
        "type": "object", "properties": {"n": {"type": "integer"}}}


def test_additional_properties() -> None:
    assert clean({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
                 for_claude=False)["description"] == "(No extra properties allowed)"
    labels = clean(load(DATA / "mcp" / "kitchen_sink.json"))["properties"]["labels"]
    assert labels["description"] == "(extra properties: string)"
    assert labels["properties"].keys() == {PLACEHOLDER_PROPERTY}


def test_if_then_else_keeps_non_conflicting_properties() -> None:
    payment = clean(load(DATA / "mcp" / "combinators.json"))["properties"]["payment"]
    assert payment["properties"].keys() == {"method", "card_number", "iban"}
    assert "required" not in payment  # `then`'s required only holds conditionally
    assert payment["properties"]["method"]["enum"] == ["card", "iban"]


def test_not_becomes_a_hint() -> None:
    assert prop({"type": "string", "not": {"enum": ["root"]}}) == {
        "type": "string", "description": "(not: {enum: [root]})"}


def test_empty_objects_get_the_placeholder_for_claude_only() -> None:
    placeholder = {"type": "boolean", "description": "Placeholder. Always pass true."}
    assert clean({"type": "object", "properties": {}}) == {
        "type": "object", "properties": {PLACEHOLDER_PROPERTY: placeholder}, "required": [PLACEHOLDER_PROPERTY]}
    assert clean({"type": "object", "properties": {}}, for_claude=False) == {"type": "object"}
    nested = clean({"type": "object", "properties": {"meta": {"type": "object"}}})["properties"]["meta"]
    assert nested == {"type": "object", "properties": {PLACEHOLDER_PROPERTY: placeholder}}  # optional when nested


@pytest.mark.parametrize("missing", [None, {}, True, False, "junk", [1, 2]])
def test_a_missing_schema_is_an_object(missing: Any) -> None:
    assert clean(missing, for_claude=False) == {"type": "object"}
    assert clean(missing)["required"] == [PLACEHOLDER_PROPERTY]


def test_arrays_without_items_get_string_items_and_tuple_items_keep_the_first() -> None:
    assert prop({"type": "array"}) == {"type": "array", "items": {"type": "string"}}
    assert prop({"type": "array", "items": [{"type": "integer"}, {"type": "string"}]})["items"] == {"type": "integer"}
    assert prop({"items": {"type": "number"}}) == {"type": "array", "items": {"type": "number"}}


def test_required_names_without_properties_are_dropped() -> None:
    out = clean(load(DATA / "mcp" / "kitchen_sink.json"))
    assert out["required"] == ["mode", "url"]  # "ghost" is undefined, "never" is `false`, "note" nullable
    assert clean({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
                 for_claude=False) == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert "required" not in prop({"type": "string", "required": ["x"]})


def test_enum_members_become_strings_and_keep_the_declared_type() -> None:
    assert prop({"type": "integer", "enum": [1, 2, 3]}) == {
        "type": "integer", "description": "(Allowed: 1, 2, 3)", "enum": ["1", "2", "3"]}
    assert prop({"enum": [True, False]})["type"] == "boolean"
    assert prop({"enum": [1.5, 2]})["type"] == "number"
    assert prop({"enum": ["a", None]}) == {"type": "string", "description": "(nullable)", "enum": ["a"]}
    assert prop({"enum": [{"k": 1}, [1]]})["enum"] == ["{k: 1}", "[1]"]
    assert "Allowed" not in prop({"enum": [str(i) for i in range(11)]}).get("description", "")


def test_properties_named_like_keywords_are_kept() -> None:
    out = clean(load(DATA / "mcp" / "keyword_names.json"), for_claude=False)
    assert list(out["properties"]) == [
        "format", "default", "const", "$ref", "type", "title", "properties", "x-trace-id"]
    assert out["properties"]["$ref"] == {"type": "string", "description": "A git ref"}
    assert out["properties"]["properties"]["properties"].keys() == {"required", "x-custom"}
    assert out["required"] == ["format", "$ref", "x-trace-id"]


def test_extension_keys_are_dropped_everywhere() -> None:
    out = clean({"type": "object", "x-mcp-header": {"type": "string"}, "properties": {
        "a": {"type": "string", "x-order": 1, "x-schema": {"type": "integer"}}}}, for_claude=False)
    assert out == {"type": "object", "properties": {"a": {"type": "string"}}}


def test_bare_property_maps_and_boolean_required_are_normalised() -> None:
    out = clean({"name": {"type": "string", "required": True}, "age": {"type": "integer"}, "meta": {"k": 1}},
                for_claude=False)
    assert out == {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                   "required": ["name"]}


def test_long_hint_values_are_cut_short() -> None:
    out = prop({"type": "string", "default": "x" * 500})
    assert len(out["description"]) < 80 and out["description"].endswith("…)")


# --- bounds ----------------------------------------------------------------------------------------


def depth_of(schema: dict) -> int:
    children = [*schema.get("properties", {}).values(), *([schema["items"]] if "items" in schema else [])]
    return 1 + max((depth_of(c) for c in children), default=0)


@pytest.mark.parametrize("wrap", [
    lambda s: {"type": "object", "properties": {"a": s}},
    lambda s: {"type": "array", "items": s},
    lambda s: {"anyOf": [s, {"type": "null"}]},
    lambda s: {"allOf": [s]},
    lambda s: {"$defs": {"x": s}, "$ref": "#/$defs/x"},
], ids=["properties", "items", "anyOf", "allOf", "ref"])
def test_deep_schemas_are_cut_not_crashed(wrap: Any) -> None:
    schema: Any = {"type": "string"}
    for _ in range(sys.getrecursionlimit() * 3):
        schema = wrap(schema)
    out = clean(schema, for_claude=False)
    assert_valid(out, for_claude=False)
    assert depth_of(out) <= 70


def test_exponential_ref_fan_out_is_bounded() -> None:
    defs: dict[str, Any] = {"D40": {"type": "string"}}
    for i in range(40):  # D0 → 2 × D1 → 4 × D2 … : 2**40 leaves if expanded naively
        defs[f"D{i}"] = {"type": "object", "properties": {k: {"$ref": f"#/$defs/D{i + 1}"} for k in "ab"}}
    started = time.monotonic()
    out = clean({"$defs": defs, "$ref": "#/$defs/D0"})
    assert time.monotonic() - started < 10
    assert_valid(out, for_claude=True)
    assert "(schema truncated)" in json.dumps(out)


# --- properties over random schemas --------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "format", "default", "const", "$ref", "type", "x-y", "required", ""])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False),
                        st.text(max_size=6))
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=5)
TYPE_NAMES = st.sampled_from([*TYPES, "null", "OBJECT", "any"])
REFS = ["#", "#/$defs/A", "#/$defs/B", "#/definitions/A", "#/properties/a", "#/nowhere", "https://example.com/x.json"]


def _schema_nodes(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={
        "type": TYPE_NAMES | st.lists(TYPE_NAMES, max_size=3),
        "description": st.text(max_size=12),
        "properties": st.dictionaries(NAMES, children, max_size=4),
        "required": st.lists(NAMES, max_size=3) | st.booleans(),
        "items": children | st.lists(children, max_size=2),
        "enum": st.lists(JSON_VALUES, max_size=4),
        "const": JSON_VALUES,
        "anyOf": st.lists(children, min_size=1, max_size=3),
        "oneOf": st.lists(children, min_size=1, max_size=3),
        "allOf": st.lists(children, min_size=1, max_size=3),
        "if": children, "then": children, "else": children, "not": children,
        "additionalProperties": st.booleans() | children,
        "patternProperties": st.dictionaries(st.text(max_size=3), children, max_size=2),
        "propertyNames": children,
        "$defs": st.dictionaries(st.sampled_from(["A", "B"]), children, max_size=2),
        "definitions": st.dictionaries(st.sampled_from(["A"]), children, max_size=1),
        "$ref": st.sampled_from(REFS),
        "default": JSON_VALUES, "examples": st.lists(JSON_VALUES, max_size=3), "format": st.text(max_size=6),
        "minimum": st.integers() | st.floats(allow_nan=False), "maxLength": st.integers(0, 10**20),
        "deprecated": st.booleans(), "readOnly": st.booleans(), "writeOnly": st.booleans(),
        "nullable": st.booleans(), "title": st.text(max_size=5), "x-ext": JSON_VALUES, "$schema": st.text(),
    })


SCHEMAS = st.recursive(st.booleans() | _schema_nodes(st.booleans()), _schema_nodes, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=SCHEMAS, for_claude=st.booleans())
def test_random_schemas_come_out_valid_idempotent_and_unmutated(schema: Any, for_claude: bool) -> None:
    before = copy.deepcopy(schema)
    out = sanitize_schema(schema, for_claude=for_claude)
    assert schema == before
    assert_valid(out, for_claude=for_claude)
    assert sanitize_schema(out, for_claude=for_claude) == out
    assert sanitize_schema(copy.deepcopy(before), for_claude=for_claude) == out  # deterministic


@settings(max_examples=50, deadline=None)
@given(schema=SCHEMAS)
def test_output_never_aliases_the_input(schema: Any) -> None:
    out = sanitize_schema(schema, for_claude=True)
    out_copy = copy.deepcopy(out)
    json.dumps(out)
    if isinstance(schema, dict):
        schema.clear()
    assert out == out_copy


# --- function names ------------------------------------------------------------------------------

NAME_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


@pytest.mark.parametrize(("name", "expected"), [
    ("Read", "Read"),
    ("mcp__github__create_issue", "mcp__github__create_issue"),
    ("multi_agent_v1/spawn_agent", "multi_agent_v1_spawn_agent"),
    ("server.tool:v2", "server_tool_v2"),
    ("héllo wörld!", "h_llo_w_rld_"),
    ("1password_lookup", "_1password_lookup"),
    ("-dash", "_-dash"),
    ("", "tool"),
])
def test_function_names_are_sanitised(name: str, expected: str) -> None:
    assert sanitize_function_name(name, set()) == expected


def test_function_names_are_cut_to_64() -> None:
    assert sanitize_function_name("a" * 100, set()) == "a" * 64
    assert sanitize_function_name("9" + "a" * 100, set()) == "_9" + "a" * 62


def test_function_names_are_made_unique_without_touching_taken() -> None:
    taken = {"tool_a", "tool_a_2"}
    assert sanitize_function_name("tool.a", taken) == "tool_a_3"
    assert taken == {"tool_a", "tool_a_2"}
    long = "x" * 64
    assert sanitize_function_name(long + "y", {long}) == "x" * 62 + "_2"


@settings(max_examples=300)
@given(name=st.text(max_size=80), taken=st.sets(st.text(alphabet="ab_-", max_size=4) | st.just("tool"), max_size=6))
def test_function_names_always_follow_the_rule(name: str, taken: set[str]) -> None:
    out = sanitize_function_name(name, taken)
    assert NAME_RULE.fullmatch(out) and out not in taken


# --- the cache ------------------------------------------------------------------------------------


def test_a_cached_result_is_a_fresh_object_equal_to_a_fresh_walk() -> None:
    tool = {"type": "object", "properties": {"path": {"type": "string", "format": "uri"}}, "required": ["path"]}
    first = sanitize_schema(tool, for_claude=True)
    first["properties"]["path"]["description"] = "changed by a caller"
    second = sanitize_schema(copy.deepcopy(tool), for_claude=True)
    assert second == schema_module._sanitize(tool, True) and second is not first
    assert second["properties"]["path"]["description"] != "changed by a caller"
    assert sanitize_schema(tool, for_claude=False) == schema_module._sanitize(tool, False)  # keyed by family too


def test_a_schema_that_is_not_plain_json_is_sanitised_without_the_cache() -> None:
    huge = {"type": "integer", "maximum": 2**70}  # beyond what orjson encodes
    assert sanitize_schema(huge, for_claude=False)["type"] == "integer"
