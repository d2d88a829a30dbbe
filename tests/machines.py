"""Shared checks for the translator state machines (h2-style exhaustive state tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.translate.turn_end import TranslatorError

UPSTREAM_FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
RECORDED = sorted(p.name.removeprefix("inner-stream.gemini.").removesuffix(".recorded.json")
                  for p in UPSTREAM_FIXTURES.glob("inner-stream.gemini.*.recorded.json"))


def recorded_responses(name: str) -> list[dict[str, Any]]:
    """The Gemini response objects of one recorded stream (without the v1internal envelope)."""
    path = UPSTREAM_FIXTURES / f"inner-stream.gemini.{name}.recorded.json"
    return orjson.loads(path.read_bytes())["response"]


def assert_defined_or_refused(machine: Any, state: object, transitions: dict[tuple[object, type], Any], event: object) -> None:
    """A (state, event) pair either has a transition that yields events, or raises TranslatorError."""
    if (state, type(event)) in transitions:
        assert isinstance(machine.feed(event), list)
    else:
        with pytest.raises(TranslatorError):
            machine.feed(event)
