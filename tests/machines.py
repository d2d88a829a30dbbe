"""Shared checks for the translator state machines (h2-style exhaustive state tables)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.translate.anthropic_stream import TranslatorError


def assert_defined_or_refused(machine: Any, state: object, transitions: dict[tuple[object, type], Any], event: object) -> None:
    """A (state, event) pair either has a transition that yields events, or raises TranslatorError."""
    if (state, type(event)) in transitions:
        assert isinstance(machine.feed(event), list)
    else:
        with pytest.raises(TranslatorError):
            machine.feed(event)
