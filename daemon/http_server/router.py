"""(method, path) -> handler table with {name} path parameters (pure)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .request import Request
    from .response import Responder

Handler = Callable[["Request", "Responder"], Awaitable[None]]

_PARAM = re.compile(r"\{(\w+)\}")


class RouteError(Exception):
    def __init__(self, status: int, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(status)
        self.status = status
        self.allowed = allowed  # for 405: the methods the path does accept


class Router:
    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        if "{" not in path:
            self._exact.setdefault(path, {})[method] = handler
            return
        regex = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+?)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")
        for existing, methods in self._patterns:
            if existing.pattern == regex.pattern:
                methods[method] = handler
                return
        self._patterns.append((regex, {method: handler}))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, Any]]:
        methods = self._exact.get(path)
        params: dict[str, Any] = {}
        if methods is None:
            for regex, candidate in self._patterns:
                match = regex.match(path)
                if match:
                    methods, params = candidate, match.groupdict()
                    break
            else:
                raise RouteError(404)
        handler = methods.get(method)
        if handler is None:
            raise RouteError(405, tuple(sorted(methods)))
        return handler, params
