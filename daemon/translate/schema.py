"""JSON-Schema sanitiser for function declarations and response schemas (pure).

The upstream checks tool schemas as Gemini protobuf `Schema`s and, for Claude, as JSON Schema
2020-12 (client-protocols.md §8 = "CP §8" wins over upstream-cloudcode.md §4.5 = "UP"). Output
nodes hold only `type`, `description`, `enum`, `items`, `properties`, `required`: an allow-list,
so a keyword nobody has reported yet cannot cause a 400 either. Decisions:

- Types are lower-case JSON Schema names for every model (CP §8 rule 15; UP rule 17 notes ACP
  upper-cases for Gemini — both are accepted, and only lower case is valid JSON Schema).
- Dropped constraints become short hints appended to the description as one suffix:
  "Path to the file (format: uri; maxLength: 256)"; also `Allowed: a, b` (2–10 enum values),
  `Accepts: string | object`, `nullable`, `No extra properties allowed`, `any type`. A hint the
  description already holds is not added again, which keeps sanitising idempotent (CP rule 17).
- Nullable (`["x","null"]`, `nullable: true`, a null union branch, `null` in `enum`): a hint, and
  the property leaves its parent's `required` (CP rule 6); no `nullable` keyword is emitted.
- No type: `properties` → object, `items` → array, `enum` → its values' type, otherwise ("any",
  `true`) → string with an "any type" hint (CP rule 1); at the top level → object (UP rule 18).
- `for_claude=True`: every object with no properties gets PLACEHOLDER_PROPERTY (OC's boolean
  `_placeholder`, UP rule 16), `required` at the top level only (CP rule 16 — strip it from the
  returned args); nested ones stay optional so the model never has to invent them inside real
  arguments. `for_claude=False`: nothing is added and an empty `properties` map is omitted
  (Gemini's validator wants a non-empty `properties` on an OBJECT, or none).
- `$ref` is inlined from the root (`#/$defs/X`, `#/definitions/X`, any local pointer); a ref
  already being expanded on the current path, or one that does not resolve, becomes
  `{"type": "object", "description": "See: X"}` (CP rule 2), so recursive schemas terminate.
- Nodes deeper than MAX_DEPTH, or beyond MAX_NODES of work (refs can fan out exponentially),
  become `{"type": "string", "description": "(schema truncated)"}`; idempotent within the bounds.

Doc conflicts (CP §8 followed): UP rule 16 puts the placeholder on every empty object, CP rule 16
only at the top level; UP rule 4 reports CPA dropping enums from function schemas, CP rule 7 keeps
them as strings; UP keeps `additionalProperties: false` in response schemas (CPA), CP deletes it;
UP rule 18 adds the placeholder for every model, CP §7.5 only through rule 16. Function names:
UP §4.4 / CP §7.5 allow `[A-Za-z0-9_.:-]`, but we emit `[A-Za-z0-9_-]` (what ACP/OC emit) because
names reach Claude unchanged and Anthropic names/ids use only that class (CP §7.6); the caller's
reverse map gives the client its own name back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

PLACEHOLDER_PROPERTY = "_placeholder"
MAX_DEPTH = 64
MAX_NODES = 20_000
MAX_NAME = 64
CACHED_SCHEMAS = 512  # distinct (schema, family) results kept: a few clients' tool sets

_TYPES = ("string", "number", "integer", "boolean", "array", "object")
_SAFE_INT = 2**53 - 1  # zod's `.int()` bounds (Claude Code's Read): they mean "no limit", so no hint
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_HINTED = (*_BOUNDS, "minLength", "maxLength", "pattern", "format", "multipleOf", "minItems", "maxItems",
           "uniqueItems", "minProperties", "maxProperties", "default", "examples", "example")
_LATER = ("allOf", "anyOf", "oneOf", "if", "then", "else", "not", "$ref")  # see _combine, _resolve
# Known keywords dropped without a hint (CP §8 rule 11, the rest of draft 2020-12 and OpenAPI).
# Naming them keeps them from being taken for a bare property map.
_DROPPED = (
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$dynamicRef", "$vocabulary", "$comment", "$defs",
    "definitions", "title", "propertyNames", "patternProperties", "unevaluatedProperties", "unevaluatedItems",
    "dependentRequired", "dependentSchemas", "dependencies", "contains", "minContains", "maxContains",
    "prefixItems", "additionalItems", "contentMediaType", "contentEncoding", "contentSchema", "deprecated",
    "readOnly", "writeOnly", "enumDescriptions", "enumTitles", "prefill", "encrypted", "discriminator",
    "xml", "externalDocs", "propertyOrdering", "errorMessage",
)
_SCHEMA_MARKERS = ("properties", "items", "enum", "const", "$ref", "anyOf", "oneOf", "allOf")
_PLACEHOLDER = {"type": "boolean", "description": "Placeholder. Always pass true."}
_TRUNCATED = {"type": "string", "description": "(schema truncated)"}
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
_HINT_WIDTH = 60


def sanitize_schema(schema: object, *, for_claude: bool) -> dict:
    """A new schema the upstream accepts (see the module docstring); `schema` is not mutated.
    Clients send the same tools on every turn, so results are cached by the schema's JSON:
    a hit costs two orjson calls instead of a walk (about 0.6 ms for Claude Code's tools)."""
    try:
        key = orjson.dumps(schema)
    except orjson.JSONEncodeError:  # not plain JSON (an integer beyond 64 bits): no cache
        return _sanitize(schema, for_claude)
    return orjson.loads(_sanitized_json(key, for_claude))  # a fresh object: callers may change it


@functools.lru_cache(maxsize=CACHED_SCHEMAS)
def _sanitized_json(key: bytes, for_claude: bool) -> bytes:
    return orjson.dumps(_sanitize(orjson.loads(key), for_claude))


def _sanitize(schema: object, for_claude: bool) -> dict:
    walk = _Walk(root=schema, for_claude=for_claude, budget=[MAX_NODES])
    node = _clean(schema if isinstance(schema, Mapping) else {}, walk)  # missing → object (rule 18)
    return _finish(node, walk, top=True)


def sanitize_function_name(name: str, taken: set[str]) -> str:
    """A declaration name the upstream and Claude accept, not in `taken` (UP §4.4, CP §7.5).

    `taken` is not modified: the caller records the result and the reverse mapping.
    """
    base = _NAME_BAD.sub("_", name) or "tool"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "_" + base  # a leading digit or dash is rejected
    candidate, n = base[:MAX_NAME], 1
    while candidate in taken:
        n += 1
        candidate = base[: MAX_NAME - len(str(n)) - 1] + f"_{n}"
    return candidate


@dataclass(frozen=True, slots=True)
class _Walk:
    root: Any
    for_claude: bool
    budget: list[int]  # nodes left, shared by one call (never a global)
    depth: int = 0
    active: frozenset[str] = frozenset()  # $refs being expanded on the current path

    def child(self) -> _Walk:
        return replace(self, depth=self.depth + 1)


@dataclass(slots=True)
class _Node:
    """One schema being built. The kw_* methods apply one keyword each (see _KEYWORDS)."""

    type: str | None = None
    desc: str = ""
    hints: list[str] = field(default_factory=list)
    props: dict[str, dict] | None = None
    required: list[str] = field(default_factory=list)
    nullable_props: set[str] = field(default_factory=set)
    items: dict | None = None
    enum: list[Any] | None = None
    from_const: bool = False
    nullable: bool = False

    def kw_type(self, key: str, value: Any, walk: _Walk) -> None:
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        names = [n.lower() for n in names if isinstance(n, str)]
        kinds = list(dict.fromkeys(n for n in names if n in _TYPES))
        self.nullable |= "null" in names  # type arrays (rule 6): first non-null type wins
        self.type = kinds[0] if kinds else self.type
        if len(kinds) > 1:
            self.hints.append("Accepts: " + " | ".join(kinds))

    def kw_description(self, key: str, value: Any, walk: _Walk) -> None:
        self.desc = value.strip() if isinstance(value, str) else self.desc

    def kw_properties(self, key: str, value: Any, walk: _Walk) -> None:
        if isinstance(value, Mapping):
            self.props = self.props if self.props is not None else {}
            for name, raw in value.items():  # names are data, never keywords (rule 12)
                self.add_property(str(name), raw, walk)

    def add_property(self, name: str, raw: Any, walk: _Walk) -> None:
        if raw is False:
            return  # `false` accepts no value, so the property cannot be sent at all (rule 1)
        if isinstance(raw, Mapping) and raw.get("required") is True:
            self.required.append(name)  # MCP-style boolean `required` on the property (UP rule 1)
        schema, nullable = _position(raw, walk.child())
        self.props = self.props if self.props is not None else {}
        self.props[name] = schema
        if nullable:
            self.nullable_props.add(name)

    def kw_required(self, key: str, value: Any, walk: _Walk) -> None:
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        self.required += [n for n in names if isinstance(n, str)]

    def kw_items(self, key: str, value: Any, walk: _Walk) -> None:
        if isinstance(value, list):  # tuple form: keep the first schema (rule 14)
            value = value[0] if value else {}
        self.items, _ = _position(value, walk.child())

    def kw_enum(self, key: str, value: Any, walk: _Walk) -> None:
        if isinstance(value, list) and value and not self.from_const:
            self.enum = list(value)

    def kw_const(self, key: str, value: Any, walk: _Walk) -> None:
        self.enum, self.from_const = [value], True  # a one-value enum, more precise than `enum` (rule 3)

    def kw_nullable(self, key: str, value: Any, walk: _Walk) -> None:
        self.nullable |= value is True

    def kw_additional(self, key: str, value: Any, walk: _Walk) -> None:
        if value is False:
            self.hints.append("No extra properties allowed")  # rule 9
        elif isinstance(value, Mapping) and isinstance(value.get("type"), str):
            self.hints.append(f"extra properties: {value['type']}")  # a map: say what it holds

    def kw_hint(self, key: str, value: Any, walk: _Walk) -> None:
        huge = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= _SAFE_INT
        if (key in _BOUNDS and huge) or (key == "uniqueItems" and value is not True):
            return
        if key == "examples" and isinstance(value, list):
            self.hints.append("examples: " + ", ".join(_text(v) for v in value[:3]))
        else:
            self.hints.append(f"{key}: {_text(value)}")  # rule 8

    def kw_unknown(self, key: str, value: Any, walk: _Walk, raw: Mapping) -> None:
        """A schema-looking value under an unknown key is a bare property (UP rule 1, CPA)."""
        if raw.get("type") not in (None, "object") or not isinstance(value, Mapping):
            return  # anything else unknown (vendor metadata, x-*) is dropped
        looks_like_schema = str(value.get("type")).lower() in _TYPES or any(m in value for m in _SCHEMA_MARKERS)
        if looks_like_schema and key not in (self.props or {}):
            self.type = self.type or "object"
            self.add_property(key, value, walk)

    def absorb(self, other: _Node, *, override: bool) -> None:
        """Merge `other` in; with override=False, whatever this node already has wins."""
        if other.props is not None:
            mine = self.props or {}
            self.props = {**mine, **{k: v for k, v in other.props.items() if override or k not in mine}}
        for attr in ("type", "items", "enum"):
            if getattr(other, attr) is not None and (override or getattr(self, attr) is None):
                setattr(self, attr, getattr(other, attr))
        self.desc = (other.desc or self.desc) if override else (self.desc or other.desc)
        self.required += other.required
        self.nullable_props |= other.nullable_props
        self.hints += other.hints
        self.nullable |= other.nullable


_KEYWORDS: dict[str, Callable[[_Node, str, Any, _Walk], None]] = {
    "type": _Node.kw_type,
    "description": _Node.kw_description,
    "properties": _Node.kw_properties,
    "required": _Node.kw_required,
    "items": _Node.kw_items,
    "enum": _Node.kw_enum,
    "const": _Node.kw_const,
    "nullable": _Node.kw_nullable,
    "additionalProperties": _Node.kw_additional,
    **{key: _Node.kw_hint for key in _HINTED},
    **{key: lambda *_: None for key in _LATER + _DROPPED},  # dropped, or applied by _resolve/_combine
}


def _position(raw: Any, walk: _Walk) -> tuple[dict, bool]:
    """The schema of a property, of `items` or of the root: (finished schema, nullable)."""
    if walk.depth > MAX_DEPTH or walk.budget[0] <= 0:
        return dict(_TRUNCATED), False
    node = _clean(raw, walk)
    return _finish(node, walk, top=False), node.nullable


def _clean(raw: Any, walk: _Walk) -> _Node:
    """Every keyword of one node, then its combinators; defaults come later (_finish)."""
    walk.budget[0] -= 1
    node = _Node()
    if walk.depth > MAX_DEPTH or walk.budget[0] < 0:
        return node
    raw, walk = _resolve(raw if isinstance(raw, Mapping) else {}, walk)  # `true`/`false` → {}
    for key, value in raw.items():
        if key in _KEYWORDS:
            _KEYWORDS[key](node, key, value, walk)
        elif isinstance(key, str) and not key.startswith(("x-", "$")):
            node.kw_unknown(key, value, walk, raw)
    _combine(node, raw, walk)
    return node


def _resolve(raw: Mapping, walk: _Walk) -> tuple[Mapping, _Walk]:
    """Inline a local $ref (sibling keywords win); a cycle or dead ref becomes a "See:" hint."""
    while isinstance(raw.get("$ref"), str):
        ref, siblings = raw["$ref"], {k: v for k, v in raw.items() if k != "$ref"}
        target = _pointer(walk.root, ref) if ref not in walk.active else None
        if not isinstance(target, Mapping):
            hint, desc = "See: " + ref.rsplit("/", 1)[-1], siblings.get("description")
            desc = f"{desc} ({hint})" if isinstance(desc, str) and desc else hint
            return {"type": "object", **siblings, "description": desc}, walk
        raw, walk = {**target, **siblings}, replace(walk, active=walk.active | {ref})
    return raw, walk


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None  # remote refs are never fetched
    node = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _combine(node: _Node, raw: Mapping, walk: _Walk) -> None:
    """allOf, if/then/else, not, anyOf/oneOf — in CP §8's order."""
    if isinstance(raw.get("allOf"), list):  # rule 4: later branches win, the node wins over all
        merged = _Node()
        for branch in raw["allOf"]:
            merged.absorb(_clean(branch, walk.child()), override=True)
        node.absorb(merged, override=False)
    for key in ("then", "else"):  # rule 10: only non-conflicting properties; `if` itself is lost
        if isinstance(raw.get(key), Mapping):
            node.absorb(_Node(props=_clean(raw[key], walk.child()).props), override=False)
    if "not" in raw:
        node.hints.append("not: " + _text(raw["not"]))
    for key in ("anyOf", "oneOf"):
        if isinstance(raw.get(key), list) and raw[key]:
            _collapse_union(node, [_clean(branch, walk.child()) for branch in raw[key]])


def _collapse_union(node: _Node, branches: list[_Node]) -> None:
    """Rule 5: all constants → one enum; otherwise the best branch plus an "Accepts" hint."""
    rest = [b for b in branches if not (b.nullable and b.type is None and not (b.props or b.items or b.enum))]
    node.nullable |= len(rest) < len(branches)
    if not rest:
        return
    if all(b.enum is not None and len(b.enum) == 1 and b.props is None and b.items is None for b in rest):
        kinds = {b.type for b in rest}
        constants = _Node(type=kinds.pop() if len(kinds) == 1 else None, enum=[b.enum[0] for b in rest if b.enum])
        node.absorb(constants, override=False)
        return
    kinds = list(dict.fromkeys(_kind(b) for b in rest))
    # object with properties > array > anything else; max() keeps the first of equals.
    node.absorb(max(rest, key=lambda b: 3 if _kind(b) == "object" and b.props else _kind(b) == "array"), override=False)
    if len(kinds) > 1:
        node.hints.append("Accepts: " + " | ".join(kinds))


def _kind(node: _Node) -> str:
    return node.type or ("object" if node.props is not None else "array" if node.items is not None else "string")


def _finish(node: _Node, walk: _Walk, *, top: bool) -> dict:
    """Defaults, per-type pruning, `required` and enum clean-up, the placeholder."""
    values = [v for v in node.enum or () if v is not None]
    node.nullable |= node.enum is not None and len(values) < len(node.enum)  # null is not a value
    kind = node.type or _infer_type(node, values, top)
    out: dict[str, Any] = {}
    if values and kind not in ("object", "array"):  # values become strings, type kept (rule 7)
        out["enum"] = list(dict.fromkeys(_text(v, width=None) for v in values))
        if 2 <= len(out["enum"]) <= 10:
            node.hints.append("Allowed: " + ", ".join(out["enum"]))
    if kind == "array":
        out["items"] = node.items or {"type": "string"}  # rule 14
    if kind == "object":
        props = dict(node.props or {})
        required = [n for n in dict.fromkeys(node.required) if n in props and n not in node.nullable_props]
        if not props and walk.for_claude:  # Claude VALIDATED mode needs >= 1 property (rule 16)
            props = {PLACEHOLDER_PROPERTY: dict(_PLACEHOLDER)}
            required = [PLACEHOLDER_PROPERTY] if top else []
        out |= ({"properties": props} if props else {}) | ({"required": required} if required else {})
    if node.nullable:
        node.hints.append("nullable")
    description = _describe(node.desc, node.hints)
    return {"type": kind, **({"description": description} if description else {}), **out}


def _infer_type(node: _Node, values: list[Any], top: bool) -> str:
    if node.props is not None or node.items is not None:
        return _kind(node)
    if values:
        return _value_type(values)
    if not top and not node.nullable:
        node.hints.append("any type")  # `true`, `{}`: the upstream needs some type (rule 1)
    return "object" if top else "string"


def _describe(desc: str, hints: list[str]) -> str:
    new = [h for h in dict.fromkeys(hints) if h not in desc]
    return f"{desc} ({'; '.join(new)})".strip() if new else desc


def _value_type(values: list[Any]) -> str:
    for kind, types in (("boolean", bool), ("integer", int), ("number", (int, float))):
        if all(isinstance(v, types) and (kind == "boolean" or not isinstance(v, bool)) for v in values):
            return kind
    return "string"


def _text(value: Any, width: int | None = _HINT_WIDTH, depth: int = 3) -> str:
    """A short JSON-like rendering; bounded in depth and width so huge defaults stay cheap."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool):
        text = "null" if value is None else "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        more = ", …" if len(value) > 5 else ""
        text = "[" + (", ".join(_text(v, None, depth - 1) for v in value[:5]) + more if depth else "…") + "]"
    elif isinstance(value, Mapping):
        pairs = list(value.items())[:5]
        text = "{" + (", ".join(f"{k}: {_text(v, None, depth - 1)}" for k, v in pairs) if depth else "…") + "}"
    else:
        text = str(value)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"
