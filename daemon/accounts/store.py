"""accounts.json on disk: never lost, never half-written, shared safely between processes.

Every change is a read-modify-write under an exclusive flock on a sidecar lock file
(never on the data file, which gets replaced): read the current file, apply the change,
write a unique temp file in the same directory, fsync it, rename it over the old one and
fsync the directory. Readers need no lock: a rename is atomic, so they see the old or the
new file, never a mix. A file that does not parse is never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .model import Account, DocumentError, parse_document, render_document

FILE_NAME = "accounts.json"
_TEMP_PREFIX = ".accounts.json.tmp-"

# What stat() says about a file; a different value means another process replaced it.
Signature = tuple[int, int, int] | None


class StoreError(Exception):
    """The accounts file cannot be read or trusted; the message names the file."""


class AccountStore:
    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir
        self.path = data_dir / FILE_NAME
        self.lock_path = data_dir / (FILE_NAME + ".lock")

    def read(self) -> list[Account]:
        """The accounts now on disk ([] when there is no file yet)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            return parse_document(raw)
        except DocumentError as exc:
            raise StoreError(
                f"{self.path} is not usable: {exc}. Nothing was changed; "
                "run `antigravity-proxy accounts doctor` to inspect and repair it"
            ) from None

    def signature(self) -> Signature:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def update(self, change: Callable[[list[Account]], list[Account]]) -> list[Account]:
        """Apply `change` to the current accounts and persist the result atomically."""
        with self.locked():
            accounts = change(self.read())
            self.write_unlocked(render_document(accounts))
            return accounts

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock every writer takes (blocks until it is free)."""
        self._ensure_directory()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def write_unlocked(self, body: bytes) -> None:
        """Atomically replace the file; the caller holds `locked()`."""
        self._remove_stale_temp_files()
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                _fsync(handle.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)  # it holds refresh tokens

    def _remove_stale_temp_files(self) -> None:
        # Left by a writer killed mid-write; safe to delete because we hold the lock.
        for stale in self.directory.glob(_TEMP_PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _fsync(fd: int) -> None:
    if sys.platform == "darwin":
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)  # macOS fsync does not reach the platter
    else:
        os.fsync(fd)
