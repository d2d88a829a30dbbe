"""What the admin page's forms change: accounts (as `antigravity-proxy accounts disable|enable|
remove` does), client keys (as `keys add|revoke`) and the routes file. Files are written
through their stores (flock, atomic replace) off the event loop; the App's in-memory view
is updated at once, so a change is in effect when the page answers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from .. import routes
from ..accounts.model import Account, switch_changes, without
from ..data_file import ensure_private_directory, replace_file
from ..keys_store import ManagedKey
from ..redact import mask_email

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

ACCOUNT_ACTIONS = ("disable", "enable", "relogin", "remove")


class ActionError(Exception):
    """The action cannot be done; the message says why, for the page."""


def account(app: App, account_id: str) -> Account:
    found = app.accounts.get(account_id)
    if found is None:
        raise ActionError(f"there is no account with id {account_id!r} (it may have been removed meanwhile)")
    return found


async def change_account(app: App, account_id: str, action: str) -> str:
    """Disable, enable or remove an account; what was done, for the page."""
    target = account(app, account_id)
    masked = mask_email(target.email)
    if action == "remove":
        await asyncio.to_thread(app.accounts.store.update, lambda accounts: without(accounts, target.id))
        app.accounts.reload_if_changed()
        log.info("admin page: account %s removed", target.id)
        return f"Removed {masked}."
    if action not in ("enable", "disable"):
        raise ActionError(f"unknown action {action!r}")
    changes = switch_changes(target, enable=action == "enable")
    if changes is None:
        raise ActionError(f"{masked} needs a new login: use Re-login")
    await app.accounts.update(target.id, **changes)
    log.info("admin page: account %s %sd", target.id, action)
    return f"{action.capitalize()}d {masked}."


# --- keys ----------------------------------------------------------------------------------------


async def create_key(app: App, name: str) -> str:
    """A new managed key (returned this once); KeysError when the name is bad or taken."""
    key = await asyncio.to_thread(app.keys.store.add, name)
    app.keys.load()  # in effect now, not at the next poll
    log.info("admin page: key %s created", name)
    return key


async def revoke_key(app: App, name: str) -> ManagedKey:
    revoked = await asyncio.to_thread(app.keys.store.revoke, name)
    app.keys.load()
    log.info("admin page: key %s revoked", name)
    return revoked


# --- routes ----------------------------------------------------------------------------------------


def routes_document(current: routes.Routes) -> dict[str, object]:
    """The routes in use, as the JSON the routes file holds."""
    document: dict[str, object] = {}
    for name, route in current.by_name.items():
        targets = [{"model": t.model, **({"accounts": list(t.accounts)} if t.accounts else {})} for t in route.targets]
        document[name] = {"strategy": route.strategy, "targets": targets}
    return document


def routes_text(current: routes.Routes) -> str:
    return orjson.dumps(routes_document(current), option=orjson.OPT_INDENT_2).decode()


async def save_routes(app: App, text: str, path: Path) -> routes.Routes:
    """Validate `text` (RoutesError saying what is wrong), write it to `path` and use it now."""
    raw = text.encode("utf-8")
    parsed = routes.parse(raw, "routes")
    body = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2) + b"\n"
    try:
        await asyncio.to_thread(_write_routes, path, body, app.settings.data_dir)
    except OSError as exc:
        raise ActionError(f"cannot write {path}: {exc.strerror or exc}") from None
    app.routes = parsed
    log.info("admin page: routes saved to %s: %s", path, ", ".join(sorted(parsed.by_name)) or "none")
    return parsed


def _write_routes(path: Path, body: bytes, data_dir: Path) -> None:
    if path.parent == data_dir:
        ensure_private_directory(data_dir)
    replace_file(path, body, durable=True)
