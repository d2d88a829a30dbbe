"""The bodies of the admin pages, from plain data (pure: the time is passed in).

Every value is escaped through render.e() or a render helper. The element ids and classes
are a contract with the browser tests and admin.js: table#accounts, tr.account
[data-account-id], td.email + button.reveal, div.quota-bar[data-family][data-remaining],
form.account-action, form#add-account, a#login-url, form#redirect-form, form#create-key-form,
code#new-key, table#keys + tr.key[data-key-name] + form.revoke-key, form#routes-form,
#routes-saved, #routes-error, table#requests + tr.request, pre#log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..accounts.model import Account, AccountState
from ..keys_store import ManagedKey
from ..pool.quota_view import duration
from ..pool.state import FAMILIES, AccountLoad
from ..redact import mask_email
from .render import ago, button, e, form, hidden, link, notice, table, when

Token = Callable[[str], str]  # the CSRF token of a form's action path

ACCOUNT_ACTION = "/admin/accounts/action"
ADD_ACCOUNT = "/admin/accounts/add"
FINISH_LOGIN = "/admin/accounts/login"
CREATE_KEY = "/admin/keys/create"
REVOKE_KEY = "/admin/keys/revoke"
SAVE_ROUTES = "/admin/routes"
FAMILY_LABELS = {"claude": "Claude", "gemini-pro": "Gemini Pro", "gemini-flash": "Gemini Flash"}


# --- accounts ----------------------------------------------------------------------------------


def quota_cell(family: str, info: Mapping[str, Any]) -> str:
    """One family's bar, from a /quota document's family entry."""
    remaining = info.get("remaining")
    if info.get("cooling_until"):
        text = f"cooling, {duration(info.get('resets_in_s'))} to reset"
        if info.get("cooling_reason"):
            text += f" ({info['cooling_reason']})"
    elif remaining is None:
        text = "no data yet"
    else:
        text = f"{round(remaining * 100)}%"
        resets_in = info.get("resets_in_s")
        if resets_in == 0:  # the reset time has passed: the next quota reading will show it
            text += ", reset due"
        elif resets_in is not None:
            text += f", resets in {duration(resets_in)}"
    value = "" if remaining is None else format(min(1.0, max(0.0, remaining)), "g")
    meter = f'<meter min="0" max="1" value="{e(value)}"></meter>' if value else ""
    return (f'<div class="quota-bar" data-family="{e(family)}" data-remaining="{e(value)}">'
            f'{meter}<span class="quota-text">{e(text)}</span></div>')


def _state_cell(account: Account) -> str:
    parts = [f'<span class="state state-{e(account.state.value)}">{e(account.state.value.replace("_", " "))}</span>']
    if account.reason:
        parts.append(f'<div class="reason">{e(account.reason)}</div>')
    if account.verify_url:
        parts.append(f'<div class="verify">{link(account.verify_url, "verify the account with Google")}</div>')
    return "".join(parts)


def _actions(account: Account, token: Token) -> str:
    masked = mask_email(account.email)
    wanted = []
    if account.state is not AccountState.DISABLED:
        wanted.append(("disable", "Disable"))
    if account.state not in (AccountState.ACTIVE, AccountState.NEEDS_LOGIN):
        wanted.append(("enable", "Enable"))
    wanted.append(("relogin", "Re-login"))
    forms = [form(ACCOUNT_ACTION, token(ACCOUNT_ACTION), hidden("account", account.id) + button(label, name="action", value=action),
                  css="account-action") for action, label in wanted]
    forms.append(form(ACCOUNT_ACTION, token(ACCOUNT_ACTION),
                      hidden("account", account.id) + button("Remove", name="action", value="remove", css="danger"),
                      css="account-action", confirm=f"Remove {masked}?"))
    return "".join(forms)


def _account_row(account: Account, families: Mapping[str, Any], load: AccountLoad | None,
                 usage: Mapping[str, Any] | None, now: float, token: Token) -> str:
    masked = mask_email(account.email)
    email = (f'<span class="address" data-masked="{e(masked)}">{e(masked)}</span> '
             f'<button type="button" class="reveal" data-email="{e(account.email)}" aria-pressed="false">show</button>'
             f'<div class="muted">id {e(account.id)}</div>')
    bars = "".join(f"<td>{quota_cell(family, families.get(family, {}))}</td>" for family in FAMILIES)
    errors = str(usage.get("errors", 0)) if usage else "0"
    last_error = f'<div class="reason">{e(account.last_error)}</div>' if account.last_error else ""
    last_used = load.last_used if load is not None else 0.0
    return (f'<tr class="account" data-account-id="{e(account.id)}">'
            f'<td class="email">{email}</td><td class="state-cell">{_state_cell(account)}</td>'
            f'<td class="id">{e(account.project_id or "-")}<div class="muted">{e(account.tier or "tier unknown")}</div></td>'
            f"{bars}"
            f'<td title="{e(when(last_used))}">{e(ago(last_used, now))}</td>'
            f'<td class="errors">{e(errors)}{last_error}</td>'
            f'<td class="actions">{_actions(account, token)}</td></tr>')


def login_panel(login_id: str, url: str, relogin_of: str, token: Token) -> str:
    """What a started login shows: the URL to open and where to paste the result."""
    who = f"the account {relogin_of}" if relogin_of else "the Google account to add"
    paste = ('<label for="redirect-url">Address the browser ended up at (or just the code)</label>'
             '<input id="redirect-url" name="redirect_url" type="text" required autocomplete="off" '
             'spellcheck="false" placeholder="http://localhost:…/oauth-callback?state=…&amp;code=…">'
             + hidden("login", login_id) + button("Finish login"))
    return (f'<section class="login" id="login"><h2>Log in</h2>'
            f"<ol><li>Open {link(url, 'the Google sign-in page', element_id='login-url')} (on any machine) "
            f"and sign in with {e(who)}.</li>"
            f"<li>Google then sends the browser to a <code>localhost</code> address that may not load: "
            f"that is expected. Copy the whole address from the address bar and paste it below.</li></ol>"
            f'<p class="muted">The sign-in URL: <code class="url">{e(url)}</code></p>'
            + form(FINISH_LOGIN, token(FINISH_LOGIN), paste, element_id="redirect-form") + "</section>")


def accounts_body(accounts: list[Account], quota: Mapping[str, Any], loads: Mapping[str, AccountLoad],
                  usage: Mapping[str, Any], now: float, token: Token, *, login: str = "",
                  message: str = "", error: str = "") -> str:
    """`quota` is the /quota document of these accounts; `usage` the usage book's accounts;
    `login` the login panel (HTML) of a login in progress."""
    families = {entry["id"]: entry["families"] for entry in quota.get("accounts", [])}
    rows = [_account_row(a, families.get(a.id, {}), loads.get(a.id), usage.get(a.id), now, token) for a in accounts]
    headings = ["Account", "State", "Project and tier", *(FAMILY_LABELS[f] for f in FAMILIES), "Last used",
                "Errors", "Actions"]
    add = form(ADD_ACCOUNT, token(ADD_ACCOUNT), button("Add an account"), element_id="add-account")
    return (notice(message, element_id="notice") + notice(error, error=True, element_id="error") + login
            + table("accounts", headings, rows, empty="No accounts yet: add one.", columns=len(headings))
            + f'<section class="add">{add}<p class="muted">Adding one starts a Google sign-in that works from any '
              "machine: this page shows the URL to open and a field for the address you end up at.</p></section>")


# --- keys ----------------------------------------------------------------------------------------


def _key_row(key: ManagedKey, usage: Mapping[str, Any] | None, token: Token) -> str:
    counts = usage or {}
    used = (f"{counts.get('requests', 0)} requests, {counts.get('errors', 0)} errors, "
            f"{counts.get('input_tokens', 0)} in / {counts.get('output_tokens', 0)} out tokens")
    revoke = form(REVOKE_KEY, token(REVOKE_KEY), hidden("name", key.name) + button("Revoke", css="danger"),
                  css="revoke-key", confirm=f"Revoke the key {key.name}? Clients using it are refused at once.")
    return (f'<tr class="key" data-key-name="{e(key.name)}"><td class="name">{e(key.name)}</td>'
            f"<td>{e(when(key.created_at))}</td><td><code>{e(key.fingerprint)}</code></td>"
            f'<td class="usage">{e(used)}</td><td>{revoke}</td></tr>')


def keys_body(keys: list[ManagedKey], usage: Mapping[str, Any], env_names: Iterable[str], token: Token, *,
              new_key: tuple[str, str] | None = None, message: str = "", error: str = "") -> str:
    """`usage` is the usage book's keys; `new_key` (name, key) of a key just created, shown
    this once."""
    parts = [notice(message, element_id="notice"), notice(error, error=True, element_id="error")]
    if new_key is not None:
        name, key = new_key
        parts.append(f'<section class="new-key"><p>The key <strong>{e(name)}</strong> was created. Copy it now: '
                     f'it is not stored and is shown only this once.</p><p><code id="new-key">{e(key)}</code></p>'
                     "<p class=\"muted\">Clients send it as <code>x-api-key</code>, <code>Authorization: Bearer"
                     "</code>, <code>x-goog-api-key</code> or <code>?key=</code>.</p></section>")
    create = ('<label for="key-name">Name</label><input id="key-name" name="name" type="text" required maxlength="64" '
              'autocomplete="off" placeholder="laptop">'
              + button("Create key"))
    parts.append(form(CREATE_KEY, token(CREATE_KEY), create, element_id="create-key-form"))
    rows = [_key_row(key, usage.get(key.name), token) for key in keys]
    parts.append(table("keys", ["Name", "Created", "Fingerprint", "Usage", ""], rows,
                       empty="No managed keys.", columns=5))
    env = list(env_names)
    if env:
        parts.append(f'<p class="muted">Also accepted: {len(env)} keys from AGPROXY_API_KEYS '
                     f"({e(', '.join(env))}); change those in the daemon's environment.</p>")
    if not keys and not env:
        parts.append('<p class="muted">Without any key the daemon serves requests with no key (loopback only); '
                     "once a key exists, every client must send one.</p>")
    return "".join(parts)


# --- routes, requests, log ---------------------------------------------------------------------


def routes_body(text: str, path: str, token: Token, *, saved: bool = False, error: str = "") -> str:
    parts = []
    if saved:
        parts.append('<p id="routes-saved" class="notice" role="status">Saved and in use now.</p>')
    if error:
        parts.append(f'<p id="routes-error" class="error" role="alert">{e(error)}</p>')
    inner = (f'<label for="routes">Routes (JSON), saved to <code>{e(path)}</code></label>'
             f'<textarea id="routes" name="routes" rows="18" spellcheck="false">{e(text)}</textarea>'
             + button("Validate, save and apply"))
    parts.append(form(SAVE_ROUTES, token(SAVE_ROUTES), inner, element_id="routes-form"))
    parts.append('<p class="muted">An object of route name → <code>{"strategy": "priority" | "random", '
                 '"targets": [{"model": "…", "accounts": ["id or e-mail", …]}, …]}</code>. Clients ask for '
                 "<code>NAME</code> or <code>route:NAME</code>; targets are tried in order (or shuffled) until one "
                 "can serve.</p>")
    return "".join(parts)


REQUEST_HEADINGS = ("Time", "Client key", "Protocol", "Model", "Account", "Status", "First byte (ms)",
                    "Duration (ms)", "Tokens in / out", "Attempts")


def request_cells(entry: Mapping[str, Any]) -> list[str]:
    """A request's cells as text, under REQUEST_HEADINGS (admin.js builds the same)."""
    def text(value: Any) -> str:
        return "-" if value is None or value == "" else str(value)

    tokens = "-"
    if entry.get("input_tokens") is not None or entry.get("output_tokens") is not None:
        tokens = f"{text(entry.get('input_tokens'))} / {text(entry.get('output_tokens'))}"
    return [text(entry.get("time")), text(entry.get("client")), text(entry.get("protocol")), text(entry.get("model")),
            text(entry.get("account")), text(entry.get("status")), text(entry.get("ttfb_ms")),
            text(entry.get("duration_ms")), tokens, text(entry.get("attempts"))]


def requests_body(entries: list[Mapping[str, Any]], limit: int) -> str:
    """`entries` newest first."""
    rows = []
    for entry in entries:
        status = entry.get("status")
        css = "request" + (" failed" if isinstance(status, int) and status >= 400 else "")
        cells = "".join(f"<td>{e(cell)}</td>" for cell in request_cells(entry))
        rows.append(f'<tr class="{css}">{cells}</tr>')
    return (f'<p class="muted">The last {limit} requests, newest first; refreshed every 2 seconds. '
            '<span id="requests-status" role="status"></span></p>'
            + table("requests", REQUEST_HEADINGS, rows, empty="No requests yet.", columns=len(REQUEST_HEADINGS)))


def log_body(lines: list[str], limit: int) -> str:
    text = "\n".join(lines) if lines else "(no log lines yet)"
    return (f'<p class="muted">The daemon\'s last {limit} log lines, oldest first (credentials are masked). '
            '<a href="/admin/log">Refresh</a></p>'
            f'<pre id="log">{e(text)}</pre>')
