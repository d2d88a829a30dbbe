"""HTML for the admin page: the package's templates (string.Template), small helpers that
escape every value they are given, and the static assets (pure: package data is read
through importlib.resources, which works from a wheel, an extracted zipapp or a source tree).

Rule: a value that did not come from this module's own literals goes through `e()` (or
a helper that calls it) before it is put into HTML. Helpers return HTML strings.
"""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Iterable
from http import HTTPStatus
from importlib import resources
from string import Template

from .. import __version__
from .security import CSRF_FIELD

PAGES = (  # (path, nav label)
    ("/admin/accounts", "Accounts"),
    ("/admin/keys", "Keys"),
    ("/admin/routes", "Routes"),
    ("/admin/requests", "Requests"),
    ("/admin/log", "Log"),
)
ASSETS = {  # the files served under /admin/static/, and nothing else
    "admin.css": b"text/css; charset=utf-8",
    "admin.js": b"text/javascript; charset=utf-8",
    "favicon.svg": b"image/svg+xml",
}


def e(value: object) -> str:
    """Escaped text for an element or a quoted attribute value."""
    return html.escape(str(value), quote=True)


@functools.cache
def _package_file(folder: str, name: str) -> bytes:
    return resources.files(__package__).joinpath(folder, name).read_bytes()


def asset(name: str) -> tuple[bytes, bytes] | None:
    """(content type, body) of a static asset; None for any other name."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return None
    return content_type, _package_file("static", name)


def _template(name: str) -> Template:
    return Template(_package_file("templates", name).decode("utf-8"))


def page(path: str, title: str, body: str, *, now: float | None = None) -> bytes:
    """A whole admin page: `body` is HTML, `title` text."""
    current = ' aria-current="page"'
    nav = "\n".join(f'<a href="{href}"{current if href == path else ""}>{label}</a>' for href, label in PAGES)
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    return _template("layout.html").substitute(
        title=e(title), page=e(path.rsplit("/", 1)[-1]), nav=nav, body=body, version=e(__version__), now=stamp,
    ).encode("utf-8")


def error_page(status: int, message: str, *, home: bool = True) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    links = '<p><a href="/admin/accounts">Back to the admin page</a></p>' if home else ""
    return _template("error.html").substitute(
        status=status, phrase=e(phrase), message=e(message), links=links,
    ).encode("utf-8")


# --- pieces ------------------------------------------------------------------------------------


def attributes(pairs: Iterable[tuple[str, object]]) -> str:
    """` name="value"` for each pair whose value is not None (names are literals)."""
    return "".join(f' {name}="{e(value)}"' for name, value in pairs if value is not None)


def form(action: str, token: str, inner: str, *, element_id: str | None = None, css: str | None = None,
         confirm: str | None = None) -> str:
    """A POST form to `action` with its CSRF field; `inner` is HTML."""
    attrs = attributes((("id", element_id), ("class", css), ("method", "post"), ("action", action),
                        ("data-confirm", confirm)))
    return f'<form{attrs}><input type="hidden" name="{CSRF_FIELD}" value="{e(token)}">{inner}</form>'


def hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">'


def button(label: str, *, name: str | None = None, value: str | None = None, css: str | None = None) -> str:
    return f'<button{attributes((("type", "submit"), ("name", name), ("value", value), ("class", css)))}>{e(label)}</button>'


def notice(message: str, *, error: bool = False, element_id: str | None = None) -> str:
    """A message box; empty text gives nothing."""
    if not message:
        return ""
    css = "error" if error else "notice"
    return f'<p{attributes((("id", element_id), ("class", css), ("role", "alert" if error else "status")))}>{e(message)}</p>'


def link(url: str, text: str, *, element_id: str | None = None) -> str:
    """An outbound link, only for http(s) URLs (anything else is shown as text, so no
    `javascript:` URL from an upstream answer ever becomes a link)."""
    if not url.lower().startswith(("https://", "http://")):
        return e(url)
    attrs = attributes((("id", element_id), ("href", url), ("target", "_blank"), ("rel", "noopener noreferrer")))
    return f"<a{attrs}>{e(text)}</a>"


def table(element_id: str, headings: Iterable[str], rows: Iterable[str], *, empty: str, columns: int) -> str:
    """A table whose rows are HTML `<tr>`s; one row saying `empty` when there are none."""
    body = "".join(rows) or f'<tr class="empty"><td colspan="{columns}">{e(empty)}</td></tr>'
    head = "".join(f"<th>{e(heading)}</th>" for heading in headings)
    table = f'<table id="{e(element_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="table-scroll">{table}</div>'  # a wide table scrolls inside the page, not with it


def when(epoch: float | None) -> str:
    """'2026-11-21 19:58:49Z', or '-' when never."""
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def ago(epoch: float | None, now: float) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago'; 'never' for no time."""
    if not epoch:
        return "never"
    seconds = max(0, int(now - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
