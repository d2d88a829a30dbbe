"""The usage book: counters per key and per account (and per model), a JSON snapshot, and
usage.json that survives restarts, written atomically and never overwritten when unreadable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from daemon import usage as usage_module
from daemon.upstream.events import Usage
from daemon.usage import FIELDS, MAX_MODELS, UsageBook

pytestmark = pytest.mark.unit

ZERO = dict.fromkeys(FIELDS, 0)


def counts(**fields: int) -> dict[str, int]:
    return {**ZERO, **fields}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_counts_per_key_per_account_and_per_model(data_dir: Path) -> None:
    book = UsageBook(data_dir)
    book.record("laptop", "acc001", "gemini-3-flash", ok=True, usage=Usage(prompt=100, candidates=20, thoughts=5, cached=40))
    book.record("laptop", "acc002", "claude-sonnet-4-6", ok=True, usage=Usage(prompt=10, candidates=2))
    book.record("ci", "acc001", "gemini-3-flash", ok=False, usage=None)
    book.record("ci", "acc001", "gemini-3-flash", ok=False, usage=Usage(prompt=7))  # failed mid-stream, usage known
    snapshot = book.snapshot()

    laptop = snapshot["keys"]["laptop"]
    assert {k: v for k, v in laptop.items() if k != "models"} == counts(
        requests=2, input_tokens=110, output_tokens=22, thinking_tokens=5, cached_tokens=40)
    assert laptop["models"] == {
        "claude-sonnet-4-6": counts(requests=1, input_tokens=10, output_tokens=2),
        "gemini-3-flash": counts(requests=1, input_tokens=100, output_tokens=20, thinking_tokens=5, cached_tokens=40),
    }
    ci = snapshot["keys"]["ci"]
    assert ci["requests"] == 2 and ci["errors"] == 2 and ci["input_tokens"] == 7
    acc001 = snapshot["accounts"]["acc001"]
    assert {k: v for k, v in acc001.items() if k != "models"} == counts(
        requests=3, errors=2, input_tokens=107, output_tokens=20, thinking_tokens=5, cached_tokens=40)
    assert acc001["models"]["gemini-3-flash"]["requests"] == 3
    assert snapshot["accounts"]["acc002"]["models"] == {"claude-sonnet-4-6": counts(requests=1, input_tokens=10, output_tokens=2)}
    assert snapshot["totals"] == counts(requests=4, errors=2, input_tokens=117, output_tokens=22, thinking_tokens=5,
                                        cached_tokens=40)


def test_no_key_and_no_account_are_reported_as_none(data_dir: Path) -> None:
    book = UsageBook(data_dir)
    book.record("", "", "gemini-3-flash", ok=False, usage=None)
    snapshot = book.snapshot()
    assert list(snapshot["keys"]) == ["(none)"] and list(snapshot["accounts"]) == ["(none)"]
    assert snapshot["keys"]["(none)"]["errors"] == 1


def test_the_snapshot_is_json_and_a_copy(data_dir: Path) -> None:
    book = UsageBook(data_dir)
    book.record("k", "a", "m", ok=True, usage=Usage(prompt=1))
    snapshot = book.snapshot()
    assert orjson.loads(orjson.dumps(snapshot)) == snapshot
    book.record("k", "a", "m", ok=True, usage=Usage(prompt=1))
    assert snapshot["keys"]["k"]["requests"] == 1  # a later request does not change an earlier snapshot
    assert book.snapshot()["keys"]["k"]["requests"] == 2


def test_record_does_no_io(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("record() touched the file system")

    book = UsageBook(data_dir)
    for name in ("open", "replace", "mkdir", "stat"):
        monkeypatch.setattr(os, name, forbidden)
    book.record("k", "a", "m", ok=True, usage=Usage(prompt=1))
    monkeypatch.undo()
    assert not data_dir.exists()


def test_models_per_entry_are_bounded(data_dir: Path) -> None:
    book = UsageBook(data_dir)
    for index in range(MAX_MODELS + 50):
        book.record("k", "a", f"model-{index}", ok=True, usage=Usage(prompt=1))
    models = book.snapshot()["keys"]["k"]["models"]
    assert len(models) == MAX_MODELS + 1
    assert models["(other)"]["requests"] == 50
    assert book.snapshot()["keys"]["k"]["requests"] == MAX_MODELS + 50


def test_flush_and_load_round_trip(data_dir: Path) -> None:
    book = UsageBook(data_dir, clock=lambda: 1_700_000_000.5)
    book.record("laptop", "acc001", "gemini-3-flash", ok=True, usage=Usage(prompt=100, candidates=20, thoughts=5, cached=40))
    book.record("", "", "x", ok=False, usage=None)
    assert book.flush() is True
    restarted = UsageBook(data_dir, clock=lambda: 1_800_000_000.0)
    restarted.load()
    assert restarted.snapshot() == book.snapshot()
    assert restarted.since == 1_700_000_000.5  # counting started before the restart
    restarted.record("laptop", "acc001", "gemini-3-flash", ok=True, usage=Usage(prompt=1))
    assert restarted.snapshot()["keys"]["laptop"]["requests"] == 2


def test_load_without_a_file_starts_now(data_dir: Path) -> None:
    book = UsageBook(data_dir, clock=lambda: 42.0)
    book.load()
    assert book.since == 42.0 and book.snapshot() == {"keys": {}, "accounts": {}, "totals": ZERO}


def test_flush_writes_a_private_file_atomically(data_dir: Path) -> None:
    book = UsageBook(data_dir)
    assert book.flush() is False and not (data_dir / "usage.json").exists()  # nothing counted yet
    book.record("k", "a", "m", ok=True, usage=None)
    assert book.flush() is True
    path = data_dir / "usage.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    document = orjson.loads(path.read_bytes())
    assert document["schema"] == "antigravity-proxy/usage" and document["version"] == 1
    assert not list(data_dir.glob(".usage.json.tmp-*"))
    inode = path.stat().st_ino
    assert book.flush() is False and path.stat().st_ino == inode  # unchanged: not rewritten
    book.record("k", "a", "m", ok=True, usage=None)
    book.flush()
    assert path.stat().st_ino != inode  # replaced by a rename, not rewritten in place


def test_a_failed_flush_leaves_the_old_file_whole(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = UsageBook(data_dir)
    book.record("k", "a", "m", ok=True, usage=None)
    book.flush()
    before = (data_dir / "usage.json").read_bytes()
    book.record("k", "a", "m", ok=True, usage=Usage(prompt=5))

    def no_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left on device"):  # the injected failure, not another one
        book.flush()
    monkeypatch.undo()
    assert (data_dir / "usage.json").read_bytes() == before
    assert not list(data_dir.glob(".usage.json.tmp-*"))
    assert book.flush() is True  # still dirty: the next flush writes it
    assert orjson.loads((data_dir / "usage.json").read_bytes())["keys"]["k"]["input_tokens"] == 5


def test_only_a_durable_flush_fsyncs(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    book = UsageBook(data_dir)
    book.record("k", "a", "m", ok=True, usage=None)
    book.flush()
    assert synced == []
    book.record("k", "a", "m", ok=True, usage=None)
    book.flush(durable=True)
    assert len(synced) == 2  # the file and the directory


@pytest.mark.parametrize("body", [
    b"",
    b"{half",
    b'{"schema": "antigravity-proxy/usage", "version": 9, "since": 1, "keys": {}, "accounts": {}}',
    (b'{"schema": "antigravity-proxy/usage", "version": 1, "since": 1, "keys": {"k": {"requests": -1, "models": {}}},'
     b' "accounts": {}}'),
])
def test_an_unreadable_file_is_set_aside_not_overwritten(data_dir: Path, body: bytes) -> None:
    data_dir.mkdir()
    (data_dir / "usage.json").write_bytes(body)
    book = UsageBook(data_dir, clock=lambda: 7.0)
    book.load()
    assert book.since == 7.0 and book.snapshot()["keys"] == {}
    [aside] = data_dir.glob("usage.json.corrupt-*")
    assert aside.read_bytes() == body
    book.record("k", "a", "m", ok=True, usage=None)
    book.flush()
    assert aside.read_bytes() == body
    assert orjson.loads((data_dir / "usage.json").read_bytes())["keys"]["k"]["requests"] == 1


def test_field_names_are_the_documented_ones() -> None:
    assert usage_module.FIELDS == ("requests", "errors", "input_tokens", "output_tokens", "thinking_tokens",
                                   "cached_tokens")
