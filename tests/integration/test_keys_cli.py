"""The real `antigravity-proxy keys …` CLI, run as `python -m daemon` subprocesses on a temp data dir.

The key is printed once by `add` and never again: not by `list`, not in keys.json. A daemon's
ManagedKeys (in this process) picks up what the CLI did through reload_if_changed().
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from daemon.keys_store import ManagedKeys

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY_LINE = re.compile(r"^agp-[A-Za-z0-9_-]{40}$", re.MULTILINE)


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGPROXY_")}
    env.update(AGPROXY_DATA_DIR=str(data_dir), AGPROXY_LOG_LEVEL="warning", **extra)
    return env


def cli(data_dir: Path, *args: str, **extra: str) -> Result:
    done = subprocess.run([sys.executable, "-m", "daemon", "keys", *args], cwd=ROOT, env=environment(data_dir, **extra),
                          capture_output=True, text=True, timeout=30, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def added_key(result: Result) -> str:
    assert result.rc == 0, result
    keys = KEY_LINE.findall(result.out)
    assert len(keys) == 1, f"expected the key once, alone on its line:\n{result}"
    return keys[0]


def test_add_prints_the_key_once_and_stores_only_its_hash(data_dir: Path) -> None:
    result = cli(data_dir, "add", "laptop")
    key = added_key(result)
    assert result.out.count(key) == 1
    assert "x-api-key" in result.out and "Authorization: Bearer" in result.out  # how to use it
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert f"added key laptop (fingerprint {fingerprint})" in result.out
    raw = (data_dir / "keys.json").read_bytes()
    assert key.encode() not in raw
    assert orjson.loads(raw)["keys"][0]["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert stat.S_IMODE((data_dir / "keys.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_list_shows_names_and_fingerprints_never_keys(data_dir: Path) -> None:
    laptop = added_key(cli(data_dir, "add", "laptop"))
    phone = added_key(cli(data_dir, "add", "phone"))
    listing = cli(data_dir, "list", AGPROXY_API_KEYS="team=team-key-123456")
    assert listing.rc == 0, listing
    lines = listing.out.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "FINGERPRINT", "ENDS", "WITH"]
    assert lines[1].split()[0] == "laptop" and lines[2].split()[0] == "phone"
    assert hashlib.sha256(laptop.encode()).hexdigest()[:8] in lines[1]
    assert laptop not in listing.out and phone not in listing.out
    assert "team-key-123456" not in listing.out and "AGPROXY_API_KEYS (team)" in listing.out
    as_json = cli(data_dir, "list", "--json")
    document = orjson.loads(as_json.out)
    assert [row["name"] for row in document["keys"]] == ["laptop", "phone"]
    assert document["keys"][1]["fingerprint"] == hashlib.sha256(phone.encode()).hexdigest()[:8]
    assert laptop not in as_json.out


def test_list_with_no_keys_says_how_to_add_one(data_dir: Path) -> None:
    result = cli(data_dir, "list")
    assert result.rc == 0 and "keys add NAME" in result.out, result


def test_revoke_deletes_and_unknown_or_duplicate_names_fail_clearly(data_dir: Path) -> None:
    added_key(cli(data_dir, "add", "laptop"))
    duplicate = cli(data_dir, "add", "laptop")
    assert duplicate.rc == 1 and "'laptop' already exists" in duplicate.err and not KEY_LINE.search(duplicate.out)
    invalid = cli(data_dir, "add", "two words")
    assert invalid.rc == 1 and "invalid key name" in invalid.err, invalid
    unknown = cli(data_dir, "revoke", "phone")
    assert unknown.rc == 1 and "no key named 'phone'" in unknown.err, unknown
    revoked = cli(data_dir, "revoke", "laptop")
    assert revoked.rc == 0 and "revoked key laptop" in revoked.out, revoked
    assert "no client keys are left" in revoked.err  # the last one: the daemon is open again
    assert orjson.loads((data_dir / "keys.json").read_bytes())["keys"] == []
    again = cli(data_dir, "revoke", "laptop")
    assert again.rc == 1


def test_a_corrupt_keys_file_is_reported_and_left_alone(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    body = b'{"schema": "antigravity-proxy/keys", "version": 1, "keys": [oops'
    (data_dir / "keys.json").write_bytes(body)
    for args in (("add", "laptop"), ("revoke", "laptop"), ("list",)):
        result = cli(data_dir, *args)
        assert result.rc == 1 and "keys.json is not usable" in result.err, result
        assert not KEY_LINE.search(result.out)
    assert (data_dir / "keys.json").read_bytes() == body


def test_a_daemon_picks_up_cli_changes(data_dir: Path) -> None:
    managed = ManagedKeys(data_dir)
    managed.load()
    key = added_key(cli(data_dir, "add", "laptop"))
    assert managed.match(key) is None
    assert managed.reload_if_changed() is True
    assert managed.match(key) == "laptop"
    assert cli(data_dir, "revoke", "laptop").rc == 0
    assert managed.reload_if_changed() is True
    assert managed.match(key) is None


def test_concurrent_cli_adds_lose_nothing(data_dir: Path) -> None:
    processes = [subprocess.Popen([sys.executable, "-m", "daemon", "keys", "add", f"worker-{n}"], cwd=ROOT,
                                  env=environment(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(6)]
    keys = {}
    for n, process in enumerate(processes):
        out, err = process.communicate(timeout=60)
        keys[f"worker-{n}"] = added_key(Result(process.returncode, out, err))
    managed = ManagedKeys(data_dir)
    managed.load()
    assert sorted(managed.names()) == sorted(keys)
    assert all(managed.match(key) == name for name, key in keys.items())
