"""accounts.json on disk; data_file.py holds the rules every data file follows (flock,
atomic replace, 0600, an unusable file never overwritten)."""

from __future__ import annotations

from pathlib import Path

from ..data_file import DataFile, Signature, StoreError
from .model import Account, parse_document, render_document

__all__ = ["FILE_NAME", "AccountStore", "Signature", "StoreError"]

FILE_NAME = "accounts.json"


class AccountStore(DataFile[list[Account]]):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, FILE_NAME, parse=parse_document, render=render_document, empty=list,
                         unusable_hint="run `antigravity-proxy accounts doctor` to inspect and repair it")
