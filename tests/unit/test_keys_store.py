"""Managed client keys: keys.json holds hashes only, changes are locked and atomic, a corrupt
file is never overwritten, and matching compares every key in constant time."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import re
import stat
import threading
from pathlib import Path

import orjson
import pytest

from daemon import client_keys, config
from daemon.data_file import StoreError
from daemon.keys_store import (
    KEY_PREFIX,
    KeysError,
    KeyStore,
    ManagedKeys,
    parse_document,
)
from daemon.redact import Secret

pytestmark = pytest.mark.unit

KEY_SHAPE = re.compile(r"agp-[A-Za-z0-9_-]{40}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the store -----------------------------------------------------------------------------


def test_add_list_revoke_round_trip(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    assert store.read() == []
    laptop = store.add("laptop", clock=lambda: 1000.0)
    ci = store.add("ci-runner", clock=lambda: 2000.0)
    keys = store.read()
    assert [(k.name, k.created_at) for k in keys] == [("laptop", 1000.0), ("ci-runner", 2000.0)]
    assert [k.hash for k in keys] == [hashlib.sha256(laptop.encode()).hexdigest(), hashlib.sha256(ci.encode()).hexdigest()]
    assert keys[0].fingerprint == keys[0].hash[:8] and keys[0].last4 == laptop[-4:]
    revoked = store.revoke("laptop")
    assert revoked.name == "laptop"
    assert [k.name for k in store.read()] == ["ci-runner"]


def test_keys_are_random_prefixed_and_40_chars(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    keys = [store.add(f"k{i}") for i in range(5)]
    assert all(KEY_SHAPE.fullmatch(key) for key in keys), keys
    assert all(key.startswith(KEY_PREFIX) for key in keys)
    assert len(set(keys)) == 5


def test_only_the_hash_is_on_disk(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    key = store.add("laptop")
    raw = store.path.read_bytes()
    assert key.encode() not in raw
    assert key[len(KEY_PREFIX):].encode() not in raw  # not even without its prefix
    document = orjson.loads(raw)
    assert document["schema"] == "antigravity-proxy/keys" and document["version"] == 1
    assert document["keys"][0]["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert set(document["keys"][0]) == {"name", "hash", "created_at", "last4"}


def test_file_is_0600_and_directory_0700(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    store = KeyStore(data_dir)
    store.add("laptop")
    assert mode_of(store.path) == 0o600
    assert mode_of(data_dir) == 0o700
    store.revoke("laptop")
    assert mode_of(store.path) == 0o600
    assert not list(data_dir.glob(".keys.json.tmp-*"))


def test_duplicate_unknown_and_invalid_names_are_clear_errors(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    store.add("laptop")
    before = store.path.read_bytes()
    with pytest.raises(KeysError, match="'laptop' already exists"):
        store.add("laptop")
    with pytest.raises(KeysError, match="no key named 'phone'.*laptop"):
        store.revoke("phone")
    for bad in ("", "has space", "-leading-dash", "x" * 65, "(none)"):
        with pytest.raises(KeysError, match="invalid key name"):
            store.add(bad)
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"schema": "antigravity-proxy/accounts", "version": 1, "keys": []}',
    b'{"schema": "antigravity-proxy/keys", "version": 2, "keys": []}',
    b'{"schema": "antigravity-proxy/keys", "version": 1, "keys": [{"name": "a", "hash": "zz", "created_at": 1}]}',
    b'{"schema": "antigravity-proxy/keys", "version": 1, "keys": [{"name": "a", "hash": "' + b"0" * 64
    + b'", "created_at": 1}, {"name": "a", "hash": "' + b"1" * 64 + b'", "created_at": 2}]}',
])
def test_a_corrupt_file_is_never_overwritten(data_dir: Path, body: bytes) -> None:
    data_dir.mkdir()
    store = KeyStore(data_dir)
    store.path.write_bytes(body)
    with pytest.raises(StoreError, match=re.escape(str(store.path))):
        store.add("laptop")
    with pytest.raises(StoreError):
        store.revoke("a")
    with pytest.raises(StoreError):
        ManagedKeys(data_dir).load()
    assert store.path.read_bytes() == body


def test_parse_accepts_entries_without_last4() -> None:
    body = orjson.dumps({"schema": "antigravity-proxy/keys", "version": 1,
                         "keys": [{"name": "old", "hash": "ab" * 32, "created_at": 5}]})
    [key] = parse_document(body)
    assert (key.name, key.last4, key.fingerprint) == ("old", "", "abababab")


def test_a_writer_waits_for_the_lock(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    store.add("first")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (store.add("late"), done.set()))
    with store.locked():
        thread.start()
        assert not done.wait(0.3), "add() wrote while another writer held the lock"
        assert [k.name for k in store.read()] == ["first"]
    thread.join(5)
    assert done.is_set() and [k.name for k in store.read()] == ["first", "late"]


def _add_many(data_dir: str, tag: str, count: int, barrier) -> None:  # type: ignore[no-untyped-def]
    code = 0
    try:
        store = KeyStore(Path(data_dir))
        barrier.wait(10)
        for index in range(count):
            store.add(f"{tag}-{index}")
    except BaseException:  # noqa: BLE001 - a forked child reports through its exit code
        code = 1
    os._exit(code)


def test_concurrent_adds_from_processes_and_threads_lose_nothing(data_dir: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_add_many, args=(str(data_dir), f"p{n}", 15, barrier)) for n in range(2)]
    threads = [threading.Thread(target=_add_many_thread, args=(data_dir, f"t{n}", 15, barrier)) for n in range(2)]
    for worker in (*processes, *threads):
        worker.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    for thread in threads:
        thread.join(30)
    names = [k.name for k in KeyStore(data_dir).read()]
    assert len(names) == 60 and len(set(names)) == 60
    assert {name.rsplit("-", 1)[0] for name in names} == {"p0", "p1", "t0", "t1"}


def _add_many_thread(data_dir: Path, tag: str, count: int, barrier) -> None:  # type: ignore[no-untyped-def]
    store = KeyStore(data_dir)
    barrier.wait(10)
    for index in range(count):
        store.add(f"{tag}-{index}")


# --- the daemon's view -----------------------------------------------------------------------


def test_match_right_wrong_and_revoked(data_dir: Path) -> None:
    store = KeyStore(data_dir)
    laptop, phone = store.add("laptop"), store.add("phone")
    managed = ManagedKeys(data_dir)
    managed.load()
    assert managed.match(laptop) == "laptop" and managed.match(phone) == "phone"
    assert managed.match(laptop[:-1] + ("A" if laptop[-1] != "A" else "B")) is None
    assert managed.match(laptop + "x") is None and managed.match("") is None
    assert managed.match(hashlib.sha256(laptop.encode()).hexdigest()) is None  # the stored hash is not a key
    store.revoke("laptop")
    assert managed.reload_if_changed() is True
    assert managed.match(laptop) is None and managed.match(phone) == "phone"


def test_match_compares_every_entry_without_early_exit(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(data_dir)
    first = store.add("first")
    for name in ("second", "third", "fourth"):
        store.add(name)
    managed = ManagedKeys(data_dir)
    managed.load()
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert managed.match(first) == "first"  # the first entry matches: the other three are still compared
    assert len(compared) == 4
    compared.clear()
    assert managed.match("short") is None
    assert compared == [(32, 32)] * 4  # digests: the presented key's length never reaches the comparison


def test_reload_picks_up_a_change_and_is_cheap_otherwise(data_dir: Path) -> None:
    managed = ManagedKeys(data_dir)
    managed.load()
    assert not managed and managed.reload_if_changed() is False
    key = KeyStore(data_dir).add("laptop")  # as `keys add` does, from another process
    assert managed.match(key) is None  # not yet reloaded
    assert managed.reload_if_changed() is True
    assert managed.match(key) == "laptop" and managed.names() == ["laptop"] and len(managed) == 1
    assert managed.reload_if_changed() is False


def test_a_corrupt_file_on_reload_keeps_the_keys_loaded_before(data_dir: Path) -> None:
    key = KeyStore(data_dir).add("laptop")
    managed = ManagedKeys(data_dir)
    managed.load()
    (data_dir / "keys.json").write_bytes(b"{oops")
    with pytest.raises(StoreError):
        managed.reload_if_changed()
    assert managed.match(key) == "laptop"  # fails closed: never drops to "no keys, open to all"


def test_deleting_the_file_drops_every_managed_key(data_dir: Path) -> None:
    key = KeyStore(data_dir).add("laptop")
    managed = ManagedKeys(data_dir)
    managed.load()
    (data_dir / "keys.json").unlink()
    assert managed.reload_if_changed() is True
    assert managed.match(key) is None and not managed


# --- client_keys with both sources --------------------------------------------------------------


def test_key_name_accepts_env_and_managed_keys(data_dir: Path) -> None:
    managed_key = KeyStore(data_dir).add("laptop")
    managed = ManagedKeys(data_dir)
    managed.load()
    env = (("team", Secret("team-key-123456")), ("ci", Secret("ci-key-abcdefgh")))
    assert client_keys.key_name("team-key-123456", env, managed) == "team"
    assert client_keys.key_name("ci-key-abcdefgh", env, managed) == "ci"
    assert client_keys.key_name(managed_key, env, managed) == "laptop"
    assert client_keys.key_name("nope-nope-nope", env, managed) is None
    assert client_keys.key_name(None, env, managed) is None
    assert client_keys.key_name("team-key-123456", env) == "team"  # without managed keys, as before
    assert client_keys.key_name(managed_key, env) is None
    assert client_keys.key_name(managed_key, (), managed) == "laptop"


def test_key_name_compares_against_every_key_of_both_sources(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(data_dir)
    store.add("laptop")
    store.add("phone")
    managed = ManagedKeys(data_dir)
    managed.load()
    env = (("team", Secret("team-key-123456")), ("ci", Secret("ci-key-abcdefgh")), ("x", Secret("x-key-xxxxxxxx")))
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert client_keys.key_name("team-key-123456", env, managed) == "team"
    assert len(compared) == 5
    compared.clear()
    assert client_keys.key_name("a", env, managed) is None
    assert compared == [(32, 32)] * 5


def test_keys_required(data_dir: Path) -> None:
    without = config.load({"AGPROXY_DATA_DIR": str(data_dir)})
    with_env = config.load({"AGPROXY_DATA_DIR": str(data_dir), "AGPROXY_API_KEYS": "team=team-key-123456"})
    managed = ManagedKeys(data_dir)
    managed.load()
    assert client_keys.keys_required(without, None) is False
    assert client_keys.keys_required(without, managed) is False
    assert client_keys.keys_required(with_env, managed) is True
    KeyStore(data_dir).add("laptop")
    managed.reload_if_changed()
    assert client_keys.keys_required(without, managed) is True
    KeyStore(data_dir).revoke("laptop")
    managed.reload_if_changed()
    assert client_keys.keys_required(without, managed) is False
