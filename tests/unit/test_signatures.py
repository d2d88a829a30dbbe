"""The signature store: remembers across restarts, survives a torn line, stays bounded."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from daemon.accounts.signatures import FILE_NAME, Remembered, SignatureStore

pytestmark = pytest.mark.unit


def test_a_restart_remembers_calls_and_families(tmp_path: Path) -> None:
    store = SignatureStore(tmp_path)
    store.load()
    store.remember("claude", "sig-a", "toolu_1", "thinking a")
    store.remember("gemini", "sig-b")
    store.close()
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600
    again = SignatureStore(tmp_path)
    again.load()
    assert again.for_tool("toolu_1") == Remembered("claude", "sig-a", "thinking a")
    assert again.family_of("sig-b") == "gemini" and again.family_of("never") is None


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    store = SignatureStore(tmp_path)
    store.load()
    store.remember("gemini", "sig-ok", "call1")
    store.close()
    with open(tmp_path / FILE_NAME, "ab") as handle:
        handle.write(b'{"f": "gemini", "s": "sig-to')  # a crash mid-write
    again = SignatureStore(tmp_path)
    again.load()
    assert again.for_tool("call1") is not None
    again.remember("gemini", "sig-next", "call2")
    again.close()
    third = SignatureStore(tmp_path)
    third.load()
    assert third.for_tool("call2") is not None


def test_the_store_and_its_file_stay_bounded(tmp_path: Path) -> None:
    store = SignatureStore(tmp_path, capacity=10)
    store.load()
    for n in range(100):
        store.remember("gemini", f"sig-{n}", f"call{n}")
    store.close()
    assert store.for_tool("call0") is None and store.for_tool("call99") is not None
    assert len((tmp_path / FILE_NAME).read_bytes().splitlines()) <= 20


def test_image_sized_signatures_are_not_kept(tmp_path: Path) -> None:
    store = SignatureStore()
    store.remember("gemini", "x" * 100_000, "call")
    assert store.for_tool("call") is None
