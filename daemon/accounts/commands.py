"""`antigravity-proxy accounts …`: add, list, remove, disable/enable, verify, import/export, doctor.

Plain text for people, `--json` for scripts. A refresh token is only ever read from a
file or standard input, never from the command line (it would leak into `ps` and the
shell history).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import time
from typing import Any

import orjson

from .. import text_table
from ..config import Settings
from ..http_client.dial import ProxyConfig
from ..http_client.errors import HTTPClientError
from ..http_client.pool import ConnectionPool
from ..redact import mask_email
from ..upstream.calls import UpstreamCallError, UpstreamCalls
from .doctor import diagnose
from .login import Added, Login, LoginError, new_account_id
from .model import Account, AccountState, find, render_document, switch_changes, without
from .registry import AccountRegistry
from .store import AccountStore, StoreError
from .tokens import AccountUnavailable, TokenManager, with_access_token

EXPORT_SCHEMA = "antigravity-proxy/export"
_EXPORTED = ("email", "refresh_token", "client_id", "project_id", "tier", "state", "reason")


def add_parser(commands: Any) -> None:
    accounts = commands.add_parser("accounts", help="add, list and manage Google accounts")
    actions = accounts.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="log in with a Google account (browser, headless paste, or refresh token)")
    add.add_argument("--no-browser", action="store_true", help="print the login URL instead of opening a browser")
    add.add_argument("--headless", action="store_true", help="log in on another machine and paste the result here")
    add.add_argument("--refresh-token-file", metavar="FILE", help="import a refresh token from FILE ('-' = stdin)")
    add.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the browser (default 300)")
    listing = actions.add_parser("list", help="show the accounts")
    listing.add_argument("--mask", action="store_true", help="hide most of each e-mail address")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for name, text in (("remove", "delete an account"), ("disable", "stop using an account"),
                       ("enable", "use a disabled or re-verified account again")):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("account", metavar="ID|EMAIL")
    verify = actions.add_parser("verify", help="refresh and probe each account upstream")
    verify.add_argument("account", metavar="ID|EMAIL", nargs="?")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    for name, text in (("import", "add the accounts of an export file"), ("export", "write every account to FILE (0600)")):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("file", metavar="FILE")
    doctor = actions.add_parser("doctor", help="check accounts.json and repair it (keeping a backup)")
    doctor.add_argument("--repair", action="store_true", help="rewrite the file from what can be salvaged")


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = AccountStore(settings.data_dir)
    try:
        if args.action == "doctor":
            return _doctor(store, args.repair)
        if args.action in ("add", "verify"):
            store.read()  # a corrupt file is reported before a login uses up its code
            return asyncio.run(_online(args, settings, store))
        return _offline(args, store)
    except (StoreError, LoginError) as exc:
        print(f"antigravity-proxy: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file named on the command line (import, export)
        print(f"antigravity-proxy: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


# --- commands that talk to Google ---------------------------------------------------


async def _online(args: argparse.Namespace, settings: Settings, store: AccountStore) -> int:
    pool = ConnectionPool(
        ssl_context=ssl.create_default_context(),
        proxies=ProxyConfig(settings.https_proxy, settings.http_proxy, settings.no_proxy),
        connect_timeout=settings.upstream_connect_timeout,
        max_idle_per_origin=2,
    )
    calls = UpstreamCalls(settings, pool)
    try:
        if args.action == "add":
            return _report_added(await _add(args, Login(settings, calls, store)))
        return await _verify(args, store, calls)
    finally:
        await pool.aclose()


async def _add(args: argparse.Namespace, login: Login) -> Added:
    if args.refresh_token_file:
        token = _read_secret_file(args.refresh_token_file)
        if not token:
            raise LoginError("the refresh token file is empty")
        return await login.import_refresh_token(token)
    if args.headless:
        return await login.headless(read_line=lambda: asyncio.to_thread(sys.stdin.readline), say=_say)
    has_display = sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return await login.desktop(open_browser=not args.no_browser and has_display, say=_say, timeout=args.timeout)


def _read_secret_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read().strip()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise LoginError(f"cannot read {path}: {exc.strerror}") from None


def _report_added(added: Added) -> int:
    account = added.account
    verb = "added" if added.created else "logged in again"
    print(f"{verb} {account.email} (id {account.id}, project {account.project_id or '-'}, tier {account.tier or '-'})")
    if account.state is not AccountState.ACTIVE:
        print(f"  warning: {account.state.value}: {account.reason}")
    return 0


async def _verify(args: argparse.Namespace, store: AccountStore, calls: UpstreamCalls) -> int:
    registry = AccountRegistry(store)
    registry.load()
    targets = registry.all() if args.account is None else [_one(registry.all(), args.account)]
    tokens = TokenManager(registry, calls)
    results = []
    for account in targets:
        results.append(await _probe(account, registry, tokens, calls))
    await tokens.aclose()
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    elif not results:
        print("no accounts yet: add one with `antigravity-proxy accounts add`")
    else:
        for result in results:
            print(f"{result['status']:<4} {result['id']}  {result['email']}  {result['detail']}".rstrip())
    return 0 if all(r["status"] != "FAIL" for r in results) else 1


async def _probe(account: Account, registry: AccountRegistry, tokens: TokenManager, calls: UpstreamCalls) -> dict[str, str]:
    result = {"id": account.id, "email": account.email, "status": "OK", "detail": ""}
    if account.state is AccountState.DISABLED:
        return {**result, "status": "SKIP", "detail": "disabled"}
    try:
        await tokens.access_token(account.id, rejected=account.access_token)  # always a real refresh
        await with_access_token(tokens, account.id, lambda token: calls.fetch_available_models(token, account.project_id))
    except AccountUnavailable as exc:
        return {**result, "status": "FAIL", "detail": f"{exc.state.value}: {exc}"}
    except HTTPClientError as exc:
        return {**result, "status": "FAIL", "detail": f"cannot reach Cloud Code: {exc}"}
    except UpstreamCallError as exc:
        await registry.record_failure(account.id, exc.failure)
        detail = exc.failure.message + (f" (open {exc.failure.verify_url})" if exc.failure.verify_url else "")
        return {**result, "status": "FAIL", "detail": f"HTTP {exc.failure.status}: {detail}"}
    return result


def _say(text: str) -> None:
    print(text, flush=True)


# --- commands on the file alone ------------------------------------------------------


def _offline(args: argparse.Namespace, store: AccountStore) -> int:
    if args.action == "list":
        return _list(store.read(), mask=args.mask, as_json=args.json)
    if args.action == "export":
        return _export(store.read(), args.file)
    if args.action == "import":
        return _import(store, args.file)
    target = _one(store.read(), args.account)
    if args.action == "remove":
        store.update(lambda accounts: without(accounts, target.id))
        print(f"removed {target.email} (id {target.id})")
        return 0
    changes = switch_changes(target, enable=args.action == "enable")
    if changes is None:
        raise LoginError(f"{target.email} needs a new login: run `antigravity-proxy accounts add`")
    changes["updated_at"] = time.time()
    store.update(lambda accounts: [a.with_changes(**changes) if a.id == target.id else a for a in accounts])
    print(f"{args.action}d {target.email} (id {target.id})")
    return 0


def _one(accounts: list[Account], key: str) -> Account:
    account = find(accounts, key)
    if account is None:
        raise LoginError(f"no account with id or e-mail {key!r} (see `antigravity-proxy accounts list`)")
    return account


def _list(accounts: list[Account], *, mask: bool, as_json: bool) -> int:
    rows = [{
        "id": a.id,
        "email": mask_email(a.email) if mask else a.email,
        "state": a.state.value,
        "project": a.project_id or "",
        "tier": a.tier or "",
        "reason": a.reason,
        "verify_url": a.verify_url,
        "last_error": a.last_error,
        "next_retry": _when(a.next_retry_at),
    } for a in accounts]
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not rows:
        print("no accounts yet: add one with `antigravity-proxy accounts add`")
        return 0
    columns = ("id", "email", "state", "project", "tier", "last_error", "next_retry")
    table = [[c.upper().replace("_", " ") for c in columns]] + [[row[c] or "-" for c in columns] for row in rows]
    print(text_table.render(table), end="")
    for row in rows:
        if row["verify_url"]:
            print(f"\n{row['id']}: verify the account at {row['verify_url']}")
    return 0


def _when(epoch: float) -> str:
    """A retry time for people: "" when none is pending, else UTC time and how far ahead."""
    ahead = epoch - time.time()
    if ahead <= 0:
        return ""
    return time.strftime("%H:%M:%SZ", time.gmtime(epoch)) + f" (in {round(ahead)}s)"


def _export(accounts: list[Account], path: str) -> int:
    entries = [{key: str(getattr(a, key)) if key == "state" else getattr(a, key) for key in _EXPORTED} for a in accounts]
    body = orjson.dumps({"schema": EXPORT_SCHEMA, "version": 1, "accounts": entries}, option=orjson.OPT_INDENT_2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(body + b"\n")
    print(f"exported {len(entries)} accounts to {path}")
    print("warning: this file holds credentials (refresh tokens); keep it private and delete it after use",
          file=sys.stderr)
    return 0


def _import(store: AccountStore, path: str) -> int:
    with open(path, "rb") as handle:
        try:
            document = orjson.loads(handle.read())
        except orjson.JSONDecodeError as exc:
            raise LoginError(f"{path} is not JSON: {exc}") from None
    entries = document.get("accounts") if isinstance(document, dict) else None
    if not isinstance(entries, list) or document.get("schema") != EXPORT_SCHEMA:
        raise LoginError(f"{path} is not an antigravity-proxy export file")
    usable = [e for e in entries if isinstance(e, dict) and e.get("email") and e.get("refresh_token") and e.get("client_id")]
    now = time.time()

    def merge(accounts: list[Account]) -> list[Account]:
        merged = list(accounts)
        for entry in usable:
            fields = {key: entry.get(key) or None for key in ("project_id", "tier")}
            fields.update(refresh_token=entry["refresh_token"], client_id=entry["client_id"], updated_at=now,
                          state=_state_of(entry), reason=str(entry.get("reason") or ""),
                          access_token="", access_expires_at=0.0)
            existing = find(merged, entry["email"])
            if existing is not None:
                merged = [a.with_changes(**fields) if a.id == existing.id else a for a in merged]
            else:
                merged.append(Account(id=new_account_id(merged), email=entry["email"], added_at=now, **fields))
        return merged

    store.update(merge)
    skipped = len(entries) - len(usable)
    print(f"imported {len(usable)} accounts" + (f" ({skipped} incomplete entries skipped)" if skipped else ""))
    return 0


def _state_of(entry: dict[str, Any]) -> AccountState:
    try:
        return AccountState(entry.get("state") or "active")
    except ValueError:
        return AccountState.ACTIVE


def _doctor(store: AccountStore, repair: bool) -> int:
    try:
        raw = store.path.read_bytes()
    except FileNotFoundError:
        print(f"{store.path}: no accounts file yet (it is created by `accounts add`)")
        return 0
    diagnosis = diagnose(raw)
    if not diagnosis.problem:
        print(f"{store.path}: OK, {len(diagnosis.salvaged)} accounts")
        return 0
    print(f"{store.path}: {diagnosis.problem}")
    if not diagnosis.repairable:
        print("not repairable here: it was written by another release of antigravity-proxy; upgrade instead")
        return 1
    print(f"salvageable: {len(diagnosis.salvaged)} accounts; unreadable entries: {diagnosis.dropped}")
    if not repair:
        print("run `antigravity-proxy accounts doctor --repair` to rewrite the file (a backup is kept)")
        return 1
    with store.locked():
        backup, fd = _new_backup(store)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        store.write_unlocked(render_document(diagnosis.salvaged))
    print(f"repaired: kept {len(diagnosis.salvaged)} accounts; the old file is saved as {backup}")
    return 0


def _new_backup(store: AccountStore) -> tuple[str, int]:
    """A fresh 0600 file beside accounts.json that no earlier repair has used."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for attempt in range(1000):
        path = f"{store.path}.corrupt-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
    raise LoginError(f"cannot find a free backup name beside {store.path}")
