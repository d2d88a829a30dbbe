"""Routes: model aliases with fallback chains, from AGPROXY_ROUTES_FILE (pure parsing).

    {"fast": {"strategy": "priority", "targets": [
        {"model": "gemini-3-flash", "accounts": ["me@example.com"]},
        {"model": "claude-sonnet-4-6"}]}}

A client asks for `fast` or `route:fast`. Targets are tried in order ("priority") or in a
random order per request ("random"); the next one is tried when the current one cannot
serve (every account rate-limited or unavailable for it), never after an answer started.
`accounts` limits a target to those accounts (ids or e-mails).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson

PREFIX = "route:"
STRATEGIES = ("priority", "random")


class RoutesError(ValueError):
    """The routes file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Target:
    model: str  # a client model name: served id, alias or family name
    accounts: tuple[str, ...] = ()  # () = any account


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    strategy: str
    targets: tuple[Target, ...]

    def ordered(self, rng: random.Random) -> list[Target]:
        targets = list(self.targets)
        if self.strategy == "random":
            rng.shuffle(targets)
        return targets


class Routes:
    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.by_name = routes or {}

    def find(self, name: str) -> Route | None:
        return self.by_name.get(name.removeprefix(PREFIX))


def parse(raw: bytes, where: str = "routes") -> Routes:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RoutesError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise RoutesError(f"{where}: must be a JSON object of route name → route")
    return Routes({name: _route(name, spec, where) for name, spec in document.items()})


def load(path: Path) -> Routes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RoutesError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse(raw, str(path))


def _route(name: str, spec: object, where: str) -> Route:
    here = f"{where}: route {name!r}"
    if not name or name.startswith(PREFIX) or "/" in name:
        raise RoutesError(f"{here}: a name must be non-empty, without '/' or the {PREFIX!r} prefix")
    if not isinstance(spec, dict):
        raise RoutesError(f"{here}: must be an object with targets")
    strategy = spec.get("strategy", "priority")
    if strategy not in STRATEGIES:
        raise RoutesError(f"{here}: strategy must be one of {', '.join(STRATEGIES)}")
    targets = spec.get("targets")
    if not isinstance(targets, list) or not targets:
        raise RoutesError(f"{here}: targets must be a non-empty list")
    return Route(name, strategy, tuple(_target(target, f"{here} target {i}") for i, target in enumerate(targets)))


def _target(spec: object, here: str) -> Target:
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), str) or not spec["model"]:
        raise RoutesError(f"{here}: needs a model name")
    accounts = spec.get("accounts", [])
    if not isinstance(accounts, list) or not all(isinstance(a, str) and a for a in accounts):
        raise RoutesError(f"{here}: accounts must be a list of account ids or e-mails")
    return Target(spec["model"], tuple(accounts))
