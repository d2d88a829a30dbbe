"""App: the one owner of process-wide state, built from Settings and passed to handlers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from http import HTTPStatus
from typing import Any
from pathlib import Path

import orjson

from . import routes
from .accounts.registry import AccountRegistry
from .accounts.signatures import SignatureStore
from .accounts.store import AccountStore, StoreError
from .accounts.tokens import TokenManager
from .config import Settings
from .dispatch.recent_responses import RecentResponses
from .handlers import admin, anthropic, gemini, models, openai_chat, quota, responses, status, usage
from .handlers import metrics as metrics_handler
from .http_client.dial import ProxyConfig
from .http_client.pool import ConnectionPool
from .http_server.response import JSON
from .http_server.router import Router
from .keys_store import ManagedKeys
from .log_tail import TAIL
from .metrics import Metrics
from .model_directory import ModelDirectory
from .monitor import RequestMonitor
from .pool.pool import AccountPool
from .upstream.calls import UpstreamCalls
from .usage import UsageBook

log = logging.getLogger(__name__)

ACCOUNTS_POLL_INTERVAL = 2.0  # seconds between checks for changes made by the CLI or another daemon
USAGE_FLUSH_INTERVAL = 60.0  # seconds: a crash loses at most this much of the usage counts
ROUTES_FILE_NAME = "routes.json"  # in the data dir, when AGPROXY_ROUTES_FILE is not set
# Settings the listener, the connection pools and the upstream client were built with.
RESTART_ONLY = (
    "host", "port", "data_dir", "upstream_urls", "oauth_auth_url", "oauth_token_url", "userinfo_url",
    "oauth_client_id", "oauth_client_secret", "oauth_callback_port", "oauth_redirect_url", "client_version",
    "user_agent", "https_proxy", "http_proxy", "no_proxy", "max_header_bytes", "max_body_bytes", "header_timeout",
    "keepalive_timeout", "max_connections", "upstream_connect_timeout", "upstream_pool_size", "log_format",
    "access_log", "env_file",
)


class App:
    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        """Raises StoreError (accounts.json) or RoutesError (AGPROXY_ROUTES_FILE) when a file is
        unusable: the daemon must not start then."""
        self.settings = settings
        self.started_at = time.monotonic()
        self.http = ConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            proxies=ProxyConfig(settings.https_proxy, settings.http_proxy, settings.no_proxy),
            connect_timeout=settings.upstream_connect_timeout,
            max_idle_per_origin=settings.upstream_pool_size,
        )
        self.accounts = AccountRegistry(AccountStore(settings.data_dir))
        self.accounts.load()
        self.calls = UpstreamCalls(settings, self.http)
        self.tokens = TokenManager(self.accounts, self.calls)
        self.signatures = SignatureStore(settings.data_dir)
        self.signatures.load()
        self.keys = ManagedKeys(settings.data_dir)
        self.keys.load()
        self.usage = UsageBook(settings.data_dir)
        self.usage.load()
        self.models = ModelDirectory(self)
        has_routes = settings.routes_file is not None or self.routes_path.exists()
        self.routes = routes.load(self.routes_path) if has_routes else routes.Routes()
        self.pool = AccountPool(self)
        self.responses = RecentResponses()
        self.monitor = RequestMonitor()  # the last requests, for the admin page
        self.metrics = Metrics()  # GET /metrics
        self.log_tail = TAIL  # the last log lines, installed by log.setup() (process-wide)
        self.router = Router()
        for handlers in (status, anthropic, models, openai_chat, responses, gemini, quota, usage, metrics_handler, admin):
            handlers.register(self.router, self)
        self._background: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        """Start the background work that lives as long as the daemon."""
        loop = asyncio.get_running_loop()
        self._background += [loop.create_task(self._watch_files()), loop.create_task(self._flush_usage())]
        self.pool.start()

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """A task that must not outlive the daemon: cancelled and awaited on close."""
        self._background = [t for t in self._background if not t.done()]
        self._background.append(task)

    def reload(self, settings: Settings) -> None:
        """SIGHUP: new settings from the environment and env file, and the routes, keys and
        accounts files read again, without dropping a connection. What the listener,
        connection pools and upstream client were built with changes only on a restart."""
        kept = {name: getattr(self.settings, name) for name in RESTART_ONLY}
        changed = sorted(name for name, value in kept.items() if getattr(settings, name) != value)
        if changed:
            log.warning("changed settings that take effect after a restart: %s", ", ".join(changed))
        self.settings = dataclasses.replace(settings, **kept)
        logging.getLogger().setLevel(self.settings.log_level.upper())
        self.reload_routes()
        self._reload_data_files()

    def _reload_data_files(self) -> None:
        """The accounts and keys files, when they changed on disk. A broken file keeps what was
        loaded in use; it is never overwritten meanwhile."""
        for reload in (self.accounts.reload_if_changed, self.keys.reload_if_changed):
            try:
                reload()
            except StoreError as exc:
                log.error("%s", exc)

    @property
    def routes_path(self) -> Path:
        """Where the routes live: AGPROXY_ROUTES_FILE, else routes.json in the data dir (which
        the admin page writes and which is read at start when it exists)."""
        return self.settings.routes_file or self.settings.data_dir / ROUTES_FILE_NAME

    def reload_routes(self) -> None:
        """SIGHUP: read the routes file again; a broken file keeps the routes in use."""
        if self.settings.routes_file is None and not self.routes_path.exists():
            return
        try:
            self.routes = routes.load(self.routes_path)
        except routes.RoutesError as exc:
            log.error("routes not reloaded, the previous ones stay in use: %s", exc)
            return
        log.info("routes reloaded: %s", ", ".join(sorted(self.routes.by_name)) or "none")

    def render_error(self, path: str | None, status_code: int, message: str) -> tuple[bytes, bytes]:
        """The body of errors raised below the protocol handlers (HTTP framing, routing, limits)."""
        body = {"error": {"type": _error_type(status_code), "message": message, "code": status_code}}
        return JSON, orjson.dumps(body)

    async def aclose(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.usage.flush(durable=True)
        await self.pool.aclose()
        await self.tokens.aclose()
        await self.http.aclose()
        self.signatures.close()

    async def _watch_files(self) -> None:
        """Pick up accounts and keys changed by the CLI or another daemon."""
        while True:
            await asyncio.sleep(ACCOUNTS_POLL_INTERVAL)
            self._reload_data_files()

    async def _flush_usage(self) -> None:
        while True:
            await asyncio.sleep(USAGE_FLUSH_INTERVAL)
            try:
                self.usage.flush()
            except OSError as exc:
                log.error("usage counts not saved: %s", exc)


def _error_type(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"
