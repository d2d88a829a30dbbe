"""Pure modules stay pure: no sockets, no event loop, no clock-driven I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DAEMON = Path(__file__).parent.parent.parent / "daemon"

PURE_MODULES = [
    "config.py",
    "limits.py",
    "redact.py",
    "sse.py",
    "http_server/request.py",
    "http_server/router.py",
    "upstream/oauth.py",
    "upstream/discovery.py",
    "upstream/failures.py",
    "upstream/endpoints.py",
    "accounts/model.py",
    "accounts/doctor.py",
    "upstream/decode.py",
    "upstream/catalog.py",
    "upstream/models.py",
    "dispatch/translating.py",
    "dispatch/recent_responses.py",
    "pool/state.py",
    "pool/selection.py",
    "pool/policy.py",
    "pool/quota.py",
    "pool/quota_view.py",
    "routes.py",
    "monitor.py",
    "metrics.py",
    "admin/security.py",
    "admin/pages.py",
    "admin/render.py",
    *sorted(str(p.relative_to(DAEMON)) for p in (DAEMON / "translate").glob("*.py")),
]
IO_IMPORTS = {"asyncio", "socket", "ssl", "uvloop", "selectors", "subprocess", "threading"}
IO_MODULES = {"daemon.serve", "daemon.app", "daemon.http_client", "daemon.http_server.protocol"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    package = "daemon." + ".".join(path.relative_to(DAEMON).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io(module: str) -> None:
    imported = imports_of(DAEMON / module)
    assert not {name.split(".")[0] for name in imported} & IO_IMPORTS, imported
    assert not any(name == io or name.startswith(io + ".") for name in imported for io in IO_MODULES), imported


def test_no_module_is_named_after_a_stdlib_module() -> None:
    import sys

    clashes = [p for p in DAEMON.rglob("*.py") if p.stem in sys.stdlib_module_names and p.stem != "__init__"]
    assert not clashes, clashes


def test_modules_stay_small() -> None:
    sizes = {str(p.relative_to(DAEMON)): len(p.read_text().splitlines()) for p in DAEMON.rglob("*.py")}
    assert max(sizes.values()) <= 450, sorted(sizes.items(), key=lambda item: -item[1])[:3]
