"""Diagnosing and repairing an accounts.json the daemon refuses to use (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .model import SCHEMA, SCHEMA_VERSION, Account, DocumentError, account_from_dict, parse_document


@dataclass(frozen=True, slots=True)
class Diagnosis:
    problem: str  # "" when the file is fine
    repairable: bool
    salvaged: list[Account]
    dropped: int  # entries that could not be kept


def diagnose(raw: bytes) -> Diagnosis:
    try:
        accounts = parse_document(raw)
    except DocumentError as exc:
        problem = str(exc)
    else:
        return Diagnosis("", False, accounts, 0)
    try:
        # raw_decode reads the first complete JSON value and ignores what follows, which
        # recovers the classic corruptions: a stray "}" or garbage after the document.
        document, _ = json.JSONDecoder().raw_decode(raw.decode("utf-8", "replace").lstrip())
    except json.JSONDecodeError:
        return Diagnosis(problem, True, [], 0)  # nothing readable: repair starts empty (with a backup)
    if isinstance(document, dict) and document.get("schema") == SCHEMA and document.get("version") != SCHEMA_VERSION:
        return Diagnosis(problem, False, [], 0)  # another release's format: upgrade rather than repair
    entries = document.get("accounts") if isinstance(document, dict) else document
    salvaged: list[Account] = []
    dropped = 0
    for entry in entries if isinstance(entries, list) else []:
        try:
            account = account_from_dict(entry)
        except DocumentError:
            dropped += 1
            continue
        if all(a.id != account.id for a in salvaged):
            salvaged.append(account)
        else:
            dropped += 1
    return Diagnosis(problem, True, salvaged, dropped)
