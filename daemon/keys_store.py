"""Managed client keys: keys.json in the data dir, `antigravity-proxy keys …`, and the daemon's view.

Only a hash of each key is stored, never the key: SHA-256 of the key's UTF-8 bytes, in hex.
A plain fast hash is enough here (no bcrypt/scrypt/argon2): every key is minted by `add`
from 240 random bits, so there is nothing to brute-force or look up in a dictionary; slow
KDFs exist to protect low-entropy, human-chosen passwords.

The file follows accounts.json's rules (accounts/store.py): every change is a
read-modify-write under an exclusive flock on a sidecar lock file, written to a temp file,
fsynced and renamed over the old one; 0600 file, 0700 directory; a file that does not parse
is never overwritten. The daemon re-reads it when its stat() signature changes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import text_table
from .data_file import DataFile, FileView, StoreError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

FILE_NAME = "keys.json"
SCHEMA = "antigravity-proxy/keys"
VERSION = 1
KEY_PREFIX = "agp-"
_KEY_BYTES = 30  # token_urlsafe(30) is exactly 40 characters: 240 random bits
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HASH = re.compile(r"[0-9a-f]{64}")


class KeysError(StoreError):
    """keys.json cannot be read or trusted, or a command cannot be done (the message says why).

    A StoreError, so the daemon refuses to start on an unusable keys.json exactly as it does
    on an unusable accounts.json (serve.py catches StoreError around App())."""


@dataclass(frozen=True, slots=True)
class ManagedKey:
    name: str
    hash: str  # sha256 hex of the key
    created_at: float  # epoch seconds
    last4: str = ""  # the key's last four characters, to tell keys apart (216 random bits stay hidden)

    @property
    def fingerprint(self) -> str:
        return self.hash[:8]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- the document ------------------------------------------------------------------------


def parse_document(raw: bytes) -> list[ManagedKey]:
    """The keys in a keys.json body; ValueError saying what is wrong."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"not an {SCHEMA} document")
    if document.get("version") != VERSION:
        raise ValueError(f"version {document.get('version')!r} is not {VERSION} (written by another release?)")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError('"keys" is not a list')
    keys: list[ManagedKey] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"key #{position} is not an object")
        name, digest, created, last4 = entry.get("name"), entry.get("hash"), entry.get("created_at"), entry.get("last4", "")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"key #{position} has no valid name")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            raise ValueError(f"key {name!r} has no valid hash")
        if not isinstance(created, (int, float)) or isinstance(created, bool) or not isinstance(last4, str):
            raise ValueError(f"key {name!r} has an invalid created_at or last4")
        if any(k.name == name for k in keys):
            raise ValueError(f"key name {name!r} appears twice")
        keys.append(ManagedKey(name, digest, float(created), last4))
    return keys


def render_document(keys: list[ManagedKey]) -> bytes:
    entries = [{"name": k.name, "hash": k.hash, "created_at": k.created_at, "last4": k.last4} for k in keys]
    return orjson.dumps({"schema": SCHEMA, "version": VERSION, "keys": entries}, option=orjson.OPT_INDENT_2) + b"\n"


# --- the file ------------------------------------------------------------------------------


class KeyStore(DataFile[list[ManagedKey]]):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, FILE_NAME, parse=parse_document, render=render_document, empty=list,
                         unusable_hint="fix or remove the file (removing it revokes every managed key)")

    def add(self, name: str, *, clock: Callable[[], float] = time.time) -> str:
        """Mint a key named `name`, store its hash and return the key (the only time it exists)."""
        if not _NAME.fullmatch(name):
            raise KeysError(f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
                            "starting with a letter or digit")
        key = KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)

        def change(keys: list[ManagedKey]) -> list[ManagedKey]:
            if any(k.name == name for k in keys):
                raise KeysError(f"a key named {name!r} already exists (revoke it first, or pick another name)")
            return [*keys, ManagedKey(name, hash_key(key), clock(), key[-4:])]

        self.update(change)
        return key

    def revoke(self, name: str) -> ManagedKey:
        """Delete the key named `name`; KeysError when there is none."""
        revoked: list[ManagedKey] = []

        def change(keys: list[ManagedKey]) -> list[ManagedKey]:
            revoked.extend(k for k in keys if k.name == name)
            if not revoked:
                known = ", ".join(k.name for k in keys) or "none"
                raise KeysError(f"no key named {name!r} (managed keys: {known})")
            return [k for k in keys if k.name != name]

        self.update(change)
        return revoked[0]

# --- the daemon's view ---------------------------------------------------------------------


class ManagedKeys(FileView[list[ManagedKey]]):
    """The keys in keys.json, as the daemon checks them; re-read when the file changes."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(KeyStore(data_dir))
        self._entries: tuple[tuple[str, bytes], ...] = ()  # (name, sha256 digest)

    def _take(self, keys: list[ManagedKey]) -> None:
        self._entries = tuple((k.name, bytes.fromhex(k.hash)) for k in keys)

    def match(self, presented: str) -> str | None:
        """The name of the managed key `presented` is; None when it is none of them."""
        return self.match_digest(hashlib.sha256(presented.encode()).digest())

    def match_digest(self, digest: bytes) -> str | None:
        """Like match(), given the SHA-256 digest of the presented key. Every entry is compared,
        in constant time and without an early exit; comparing digests (always 32 bytes) also
        hides the length of the keys."""
        found = None
        for name, stored in self._entries:
            if hmac.compare_digest(stored, digest):
                found = name
        return found

    def names(self) -> list[str]:
        return [name for name, _ in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)


# --- command line: `antigravity-proxy keys …` -------------------------------------------------


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke client API keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a key (it is printed once and never stored)")
    add.add_argument("name", metavar="NAME", help="what the key is for (shown in logs and /usage)")
    listing = actions.add_parser("list", help="show the keys (names and fingerprints, never the keys)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = actions.add_parser("revoke", help="delete a key: a running daemon rejects it within seconds")
    revoke.add_argument("name", metavar="NAME")


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = KeyStore(settings.data_dir)
    env_names = [name for name, _ in settings.api_keys]
    try:
        if args.action == "add":
            return _add(store, args.name, env_names)
        if args.action == "revoke":
            return _revoke(store, args.name, env_names)
        return _list(store.read(), env_names, as_json=args.json)
    except StoreError as exc:
        print(f"antigravity-proxy: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"antigravity-proxy: {exc.filename or store.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _add(store: KeyStore, name: str, env_names: list[str]) -> int:
    key = store.add(name)
    if name in env_names:
        print(f"warning: AGPROXY_API_KEYS also has a key named {name!r}; /usage will count both under one name",
              file=sys.stderr)
    print(f"added key {name} (fingerprint {hash_key(key)[:8]}); it is shown only this once:")
    print(key)
    print("clients send it as `x-api-key: KEY`, `Authorization: Bearer KEY`, `x-goog-api-key: KEY` or `?key=KEY`")
    return 0


def _revoke(store: KeyStore, name: str, env_names: list[str]) -> int:
    revoked = store.revoke(name)
    print(f"revoked key {name} (fingerprint {revoked.fingerprint})")
    if not store.read() and not env_names:
        print("warning: no client keys are left, so the daemon accepts requests without a key again "
              "(add one with `antigravity-proxy keys add NAME`, or set AGPROXY_API_KEYS)", file=sys.stderr)
    return 0


def _list(keys: list[ManagedKey], env_names: list[str], *, as_json: bool) -> int:
    rows = [{"name": k.name, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k.created_at)),
             "fingerprint": k.fingerprint, "ends_with": k.last4} for k in keys]
    if as_json:
        print(orjson.dumps({"keys": rows, "env_keys": env_names}, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not rows:
        print("no managed keys yet: add one with `antigravity-proxy keys add NAME`")
    else:
        columns = ("name", "created", "fingerprint", "ends_with")
        table = [[c.upper().replace("_", " ") for c in columns]]
        table += [[row[c] if c != "ends_with" else (f"...{row[c]}" if row[c] else "-") for c in columns] for row in rows]
        print(text_table.render(table), end="")
    if env_names:
        print(f"also accepted: {len(env_names)} keys from AGPROXY_API_KEYS ({', '.join(env_names)})")
    return 0
