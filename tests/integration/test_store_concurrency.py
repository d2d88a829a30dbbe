"""AccountStore under real concurrency: many writer processes, SIGKILLed writers, the lock, corrupt files.

Every writer process here is a fork of the test process (`os.fork()` directly, or
multiprocessing's "fork" context); a forked child always leaves through `os._exit`, so it
never runs pytest code after its work is done.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from daemon.accounts.model import Account, parse_document, render_document
from daemon.accounts.store import AccountStore, StoreError

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

pytestmark = pytest.mark.integration

TEMP_GLOB = ".accounts.json.tmp-*"


def make_account(tag: str, index: int, reason: str = "") -> Account:
    return Account(
        id=f"{tag}-{index:04d}",
        email=f"{tag}.{index:04d}@example.com",
        refresh_token=f"1//refresh-{tag}-{index:04d}-" + "x" * 64,
        client_id="client-id.apps.googleusercontent.com",
        project_id=f"project-{tag}-{index}",
        tier="standard-tier",
        reason=reason,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(TEMP_GLOB))


# --- forked children -------------------------------------------------------------------


def fork_child(work: Callable[[], object]) -> int:
    """Run `work` in a forked child that exits 0 on success, 1 on any exception."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            with_traceback = traceback.format_exc()
            os.write(2, with_traceback.encode())
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int, timeout: float = 30.0) -> int:
    """The child's raw wait status; kills it and fails when it outlives `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} still running after {timeout} s")
        time.sleep(0.002)


def exit_code(status: int) -> int | None:
    return os.waitstatus_to_exitcode(status)


# --- generations: every account's reason carries the generation of the write ------------


def generation_label(generation: int) -> str:
    return f"generation {generation}"


def generations_in(accounts: list[Account]) -> set[int]:
    return {int(a.reason.removeprefix("generation ")) for a in accounts}


def single_generation(accounts: list[Account]) -> int:
    generations = generations_in(accounts)
    assert len(generations) == 1, f"accounts from several writes mixed in one file: {sorted(generations)}"
    return generations.pop()


def next_generation(accounts: list[Account]) -> list[Account]:
    label = generation_label(single_generation(accounts) + 1)
    return [a.with_changes(reason=label) for a in accounts]


def seed(store: AccountStore, count: int) -> list[Account]:
    accounts = [make_account("gen", i, generation_label(0)) for i in range(count)]
    store.update(lambda _: accounts)
    return accounts


# --- 1. many writers -------------------------------------------------------------------

WRITERS = 8
PER_WRITER = 100


def add_accounts(data_dir: str, worker: int, barrier: Barrier) -> None:
    store = AccountStore(Path(data_dir))
    barrier.wait(timeout=30)
    for index in range(PER_WRITER):
        new = make_account(f"w{worker}", index)
        store.update(lambda accounts, new=new: accounts + [new])


def test_eight_processes_adding_accounts_lose_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # the store creates it
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WRITERS)
    processes = [
        context.Process(target=add_accounts, args=(str(data_dir), worker, barrier), daemon=True)
        for worker in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    assert [p.exitcode for p in processes] == [0] * WRITERS

    store = AccountStore(data_dir)
    raw = store.path.read_bytes()
    accounts = parse_document(raw)
    assert store.read() == accounts
    assert len(accounts) == WRITERS * PER_WRITER
    expected_ids = {f"w{w}-{i:04d}" for w in range(WRITERS) for i in range(PER_WRITER)}
    id_counts = collections.Counter(a.id for a in accounts)
    assert set(id_counts) == expected_ids
    assert max(id_counts.values()) == 1
    email_counts = collections.Counter(a.email for a in accounts)
    assert set(email_counts) == {f"w{w}.{i:04d}@example.com" for w in range(WRITERS) for i in range(PER_WRITER)}
    assert max(email_counts.values()) == 1
    # Each writer's accounts appear in the order it added them (appends, never reorders).
    for worker in range(WRITERS):
        own = [a.id for a in accounts if a.id.startswith(f"w{worker}-")]
        assert own == sorted(own)
    # The writers really ran side by side: their appends interleave in the file.
    owners = [a.id.split("-")[0] for a in accounts]
    switches = sum(1 for before, after in zip(owners, owners[1:]) if before != after)
    assert switches > WRITERS, f"writers never interleaved ({switches} switches); the test proved nothing"

    assert mode_of(store.path) == 0o600
    assert mode_of(data_dir) == 0o700
    assert mode_of(store.lock_path) == 0o600
    assert temp_files(data_dir) == []


# --- 2. writers killed at random points --------------------------------------------------

KILLS = 200
KILL_ACCOUNTS = 40


def test_writer_killed_mid_write_leaves_old_or_new_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # too open: the first writer must tighten it
    store = AccountStore(data_dir)
    original = seed(store, KILL_ACCOUNTS)
    original_ids = [a.id for a in original]
    assert mode_of(data_dir) == 0o700

    # How long one write takes here, so the kills are spread over whole writes.
    started = time.perf_counter()
    for _ in range(5):
        store.update(next_generation)
    per_write = (time.perf_counter() - started) / 5
    max_delay = min(max(4 * per_write, 0.001), 0.03)

    def write_forever() -> None:
        while True:
            store.update(next_generation)

    rng = random.Random(20240607)
    last = single_generation(store.read())
    first = last
    kills_leaving_temp = 0
    started = time.perf_counter()
    for kill in range(KILLS):
        pid = fork_child(write_forever)
        time.sleep(rng.uniform(0, max_delay))
        os.kill(pid, signal.SIGKILL)
        status = wait_child(pid)
        assert exit_code(status) == -signal.SIGKILL, f"writer died on its own (status {status}) at kill {kill}"
        if temp_files(data_dir):
            kills_leaving_temp += 1

        accounts = parse_document(store.path.read_bytes())  # parses: never half-written
        assert store.read() == accounts
        assert [a.id for a in accounts] == original_ids, f"accounts lost or changed at kill {kill}"
        generation = single_generation(accounts)  # exactly one whole write, old or new
        assert generation >= last, f"generation went back from {last} to {generation} at kill {kill}"
        last = generation
        assert mode_of(store.path) == 0o600
    elapsed = time.perf_counter() - started

    assert last > first, "the killed writers never completed a single write; the test proved nothing"
    assert kills_leaving_temp > 0, "no kill landed inside a write (no temp file ever left); the test proved nothing"
    assert elapsed < 30, f"{KILLS} kills took {elapsed:.1f} s"

    # A temp file from a writer killed long ago, planted in case no kill left one behind.
    planted = data_dir / ".accounts.json.tmp-planted"
    planted.write_bytes(b'{"half": ')
    store.update(next_generation)
    assert temp_files(data_dir) == []
    assert single_generation(store.read()) == last + 1
    assert mode_of(store.path) == 0o600
    assert mode_of(data_dir) == 0o700


# --- 3. the lock -----------------------------------------------------------------------


def probe_lock_in_other_process(lock_path: Path) -> bool:
    """True when another process can take the writers' lock without waiting."""
    import fcntl

    def try_lock() -> None:
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os._exit(3)
        finally:
            os.close(fd)

    code = exit_code(wait_child(fork_child(try_lock), timeout=10))
    assert code in (0, 3), f"lock probe crashed with {code}"
    return code == 0


def flock_command_can_lock(lock_path: Path) -> bool | None:
    """The util-linux flock(1) verdict, or None when the command is not installed."""
    flock = shutil.which("flock")
    if flock is None:
        return None
    result = subprocess.run([flock, "-n", str(lock_path), "true"], timeout=10, capture_output=True)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def test_locked_excludes_other_processes(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "data")
    seed(store, 3)

    with store.locked():
        assert probe_lock_in_other_process(store.lock_path) is False
        assert flock_command_can_lock(store.lock_path) in (False, None)
    assert probe_lock_in_other_process(store.lock_path) is True
    assert flock_command_can_lock(store.lock_path) in (True, None)


def test_update_waits_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "data")
    seed(store, 3)
    held_read, held_write = os.pipe()
    release_read, release_write = os.pipe()

    def hold_lock() -> None:
        with store.locked():
            os.write(held_write, b"x")
            os.read(release_read, 1)  # until the test lets go

    pid = fork_child(hold_lock)
    try:
        assert os.read(held_read, 1) == b"x"
        assert flock_command_can_lock(store.lock_path) in (False, None)
        assert probe_lock_in_other_process(store.lock_path) is False

        done = threading.Event()
        result: list[list[Account]] = []
        thread = threading.Thread(target=lambda: (result.append(store.update(next_generation)), done.set()))
        thread.start()
        assert not done.wait(0.3), "update() did not wait for the lock another process holds"
        assert single_generation(store.read()) == 0
    finally:
        os.write(release_write, b"x")
        status = wait_child(pid, timeout=10)
    thread.join(timeout=10)
    assert done.is_set()
    assert exit_code(status) == 0
    assert single_generation(result[0]) == 1
    assert single_generation(store.read()) == 1
    assert flock_command_can_lock(store.lock_path) in (True, None)
    for fd in (held_read, held_write, release_read, release_write):
        os.close(fd)


# --- 4. corrupt files ------------------------------------------------------------------


def _valid_body() -> bytes:
    return render_document([make_account("corrupt", i) for i in range(3)])


def _version_99() -> bytes:
    document = orjson.loads(_valid_body())
    document["version"] = 99
    return orjson.dumps(document)


CORRUPT_BODIES = {
    "truncated": _valid_body()[: len(_valid_body()) // 2],
    "extra-brace": _valid_body().rstrip() + b"}\n",
    "empty-object": b"{}",
    "version-99": _version_99(),
}


@pytest.mark.parametrize("body", CORRUPT_BODIES.values(), ids=CORRUPT_BODIES.keys())
def test_corrupt_or_unknown_file_is_refused_and_left_alone(tmp_path: Path, body: bytes) -> None:
    store = AccountStore(tmp_path / "data")
    seed(store, 2)
    store.path.write_bytes(body)
    signature = store.signature()
    calls: list[list[Account]] = []

    def change(accounts: list[Account]) -> list[Account]:
        calls.append(accounts)
        return accounts + [make_account("new", 0)]

    with pytest.raises(StoreError) as read_error:
        store.read()
    assert str(store.path) in str(read_error.value)

    with pytest.raises(StoreError) as update_error:
        store.update(change)
    assert str(store.path) in str(update_error.value)

    assert calls == [], "update() applied a change to a file it could not read"
    assert store.path.read_bytes() == body
    assert store.signature() == signature  # not even rewritten with the same bytes
    assert temp_files(store.directory) == []


# --- 5. readers during writes ----------------------------------------------------------

READER_WRITES = 300
READER_ACCOUNTS = 100


def test_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "data")
    ids = [a.id for a in seed(store, READER_ACCOUNTS)]

    def write_many() -> None:
        for _ in range(READER_WRITES):
            store.update(next_generation)

    pid = fork_child(write_many)
    done, status = 0, 0
    reads = 0
    seen: set[int] = set()
    last = 0
    deadline = time.monotonic() + 30
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            accounts = store.read()  # raises StoreError on a torn file
            reads += 1
            assert [a.id for a in accounts] == ids
            generation = single_generation(accounts)
            assert generation >= last
            last = generation
            seen.add(generation)
            if done:
                break
            assert time.monotonic() < deadline, "writer did not finish in 30 s"
    finally:
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert exit_code(status) == 0
    assert reads > 0
    assert len(seen) > 2, f"the reader only saw generations {sorted(seen)}: it never overlapped the writer"
    assert last == READER_WRITES
    assert single_generation(store.read()) == READER_WRITES
