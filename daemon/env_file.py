"""AGPROXY_ENV_FILE: `KEY=VALUE` lines the daemon reads at start and on SIGHUP, for service
managers that pass no environment of their own (brew services). Real environment variables
win over the file. A file that holds a secret must not be readable by every user."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

VARIABLE = "AGPROXY_ENV_FILE"


class EnvFileError(ValueError):
    """The env file cannot be used; the message names the file and says why."""


def parse(text: str, where: str = "env file") -> dict[str, str]:
    """`KEY=VALUE` lines; blank lines and `#` comments skipped; an `export ` prefix and one
    pair of matching quotes around the value allowed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise EnvFileError(f"{where}, line {number}: expected KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def read(path: Path, secret_names: frozenset[str]) -> dict[str, str]:
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except OSError as exc:
        raise EnvFileError(f"{path}: cannot be read ({exc.strerror})") from None
    values = parse(text, str(path))
    secrets = sorted(name for name in values if name in secret_names and values[name])
    if secrets and mode & stat.S_IROTH:
        raise EnvFileError(f"{path} holds {', '.join(secrets)} and every user can read it: chmod 600 {path}")
    return values


def environment(environ: Mapping[str, str], secret_names: frozenset[str]) -> dict[str, str]:
    """The environment to configure from: the env file's values, then the real environment over them."""
    path = environ.get(VARIABLE, "").strip()
    if not path:
        return dict(environ)
    return {**read(Path(os.path.expanduser(path)), secret_names), **environ}
