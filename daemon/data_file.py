"""A JSON document in the data directory: never lost, never half-written, shared safely
between processes (accounts.json, keys.json, usage.json).

Every change is a read-modify-write under an exclusive flock on a sidecar lock file (never
on the data file, which gets replaced): read the current file, apply the change, write a
unique temp file in the same directory, fsync it, rename it over the old one and fsync the
directory. Readers need no lock: a rename is atomic, so they see the old or the new file,
never a mix. A file that does not parse is never overwritten. Files are 0600 and the
directory 0700: they hold refresh tokens and key hashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# What stat() says about a file; a different value means another process replaced it.
Signature = tuple[int, int, int] | None


class StoreError(Exception):
    """A data file cannot be read or trusted; the message names the file."""


class DataFile(Generic[T]):
    def __init__(self, directory: Path, name: str, *, parse: Callable[[bytes], T], render: Callable[[T], bytes],
                 empty: Callable[[], T], unusable_hint: str) -> None:
        """`parse` raises ValueError saying what is wrong; `unusable_hint` tells the user what to do then."""
        self.directory = directory
        self.path = directory / name
        self.lock_path = directory / (name + ".lock")
        self._parse, self._render, self._empty, self._hint = parse, render, empty, unusable_hint

    def read(self) -> T:
        """The document now on disk (empty when there is no file yet); StoreError when unusable."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self._empty()
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return self._parse(raw)
        except ValueError as exc:
            raise StoreError(f"{self.path} is not usable: {exc}. Nothing was changed; {self._hint}") from None

    def signature(self) -> Signature:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def update(self, change: Callable[[T], T]) -> T:
        """Apply `change` to the current document and persist the result atomically."""
        with self.locked():
            document = change(self.read())  # an unusable file raises here: it is never overwritten
            self.write_unlocked(self._render(document))
            return document

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock every writer takes (blocks until it is free)."""
        ensure_private_directory(self.directory)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def write_unlocked(self, body: bytes) -> None:
        """Atomically replace the file; the caller holds `locked()`."""
        replace_file(self.path, body, durable=True)


class FileView(Generic[T]):
    """A DataFile's document held in memory, read again when another process replaced the
    file (the CLI, another daemon): a cheap stat() when nothing changed."""

    def __init__(self, file: DataFile[T]) -> None:
        self.store = file
        self._signature: Signature = None

    def load(self) -> None:
        """Read the file now; StoreError when it is unusable (what was loaded before stays)."""
        signature = self.store.signature()
        self._take(self.store.read())
        self._signature = signature

    def reload_if_changed(self) -> bool:
        if self.store.signature() == self._signature:
            return False
        self.load()
        log.info("%s changed on disk", self.store.path.name)
        return True

    def forget_signature(self) -> None:
        """Read the file again at the next check (after this process wrote it)."""
        self._signature = None

    def _take(self, document: T) -> None:
        raise NotImplementedError


def replace_file(path: Path, body: bytes, *, durable: bool) -> None:
    """Replace `path` with `body` through a 0600 temp file in the same directory and a rename:
    readers see the old file or the new one, never a mix. `durable` also fsyncs the file and
    the directory, so the new content survives a power loss too. The directory must exist.

    Temp files of `path` left by a writer killed mid-write are removed first. A concurrent
    writer's temp file would go too (its write then fails), so writers hold the file's lock or
    accept that."""
    prefix = f".{path.name}.tmp-"
    for stale in path.parent.glob(glob.escape(prefix) + "*"):
        stale.unlink(missing_ok=True)
    fd, temp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            if durable:
                _fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def ensure_private_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        os.chmod(directory, 0o700)


def _fsync(fd: int) -> None:
    if sys.platform == "darwin":
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)  # macOS fsync does not reach the platter
    else:
        os.fsync(fd)
