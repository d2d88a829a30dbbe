"""replace_file: the one atomic replace every data file uses (accounts, keys, usage, routes,
signatures): a private temp file beside the target, renamed over it; stale temps of that
target removed, other files left alone; nothing left behind when the write fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from daemon import data_file
from daemon.accounts.signatures import FILE_NAME, SignatureStore
from daemon.data_file import replace_file

pytestmark = pytest.mark.unit


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("durable", [True, False])
def test_creates_and_replaces_a_private_file(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "doc.json"
    replace_file(target, b"one", durable=durable)
    assert target.read_bytes() == b"one" and mode_of(target) == 0o600
    inode = target.stat().st_ino
    os.chmod(target, 0o644)
    replace_file(target, b"two", durable=durable)
    assert target.read_bytes() == b"two" and mode_of(target) == 0o600
    assert target.stat().st_ino != inode  # a rename, not a rewrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_removes_stale_temps_of_the_target_only(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    keep = [tmp_path / ".other.json.tmp-x", tmp_path / "doc.json.tmp-x", tmp_path / ".doc.json.lock"]
    for path in [tmp_path / ".doc.json.tmp-abc", tmp_path / ".doc.json.tmp-", *keep]:
        path.write_bytes(b"left behind")
    replace_file(target, b"body", durable=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["doc.json", *(p.name for p in keep)])


def test_a_name_with_glob_characters_matches_only_itself(tmp_path: Path) -> None:
    target = tmp_path / "r[1]*.json"
    unrelated = tmp_path / ".r1x.json.tmp-a"  # what an unescaped "[1]*" pattern would match
    stale = tmp_path / ".r[1]*.json.tmp-a"
    unrelated.write_bytes(b"")
    stale.write_bytes(b"")
    replace_file(target, b"body", durable=False)
    assert unrelated.exists() and not stale.exists() and target.read_bytes() == b"body"


@pytest.mark.parametrize("durable", [True, False])
def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        durable: bool) -> None:
    target = tmp_path / "doc.json"
    replace_file(target, b"old", durable=durable)

    def no_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left on device"):  # the injected failure, not another one
        replace_file(target, b"new", durable=durable)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


@pytest.mark.parametrize("durable", [True, False])
def test_fsyncs_file_and_directory_only_when_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     durable: bool) -> None:
    synced: list[str] = []
    monkeypatch.setattr(data_file, "_fsync", lambda fd: synced.append("file"))
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("directory")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    replace_file(tmp_path / "doc.json", b"body", durable=durable)
    assert synced == (["file", "directory"] if durable else [])


def test_the_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replace_file(tmp_path / "missing" / "doc.json", b"body", durable=True)


def test_signature_compaction_replaces_the_file_privately(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / f".{FILE_NAME}.tmp-stale").write_bytes(b"left by a killed daemon")
    store = SignatureStore(data_dir, capacity=2)
    store.load()
    for index in range(5):  # past twice the capacity: the file is compacted
        store.remember("claude", f"sig-{index}", f"tool-{index}")
    store.close()
    assert len((data_dir / FILE_NAME).read_bytes().splitlines()) < 5
    assert mode_of(data_dir / FILE_NAME) == 0o600 and mode_of(data_dir) == 0o700
    assert sorted(p.name for p in data_dir.iterdir()) == [FILE_NAME]
