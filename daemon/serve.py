"""Process lifecycle: uvloop, the listener, SIGTERM drain, SIGHUP routes reload and exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import uvloop

from . import __version__, config, env_file, sd_notify
from .accounts.store import StoreError
from .app import App
from .client_keys import keys_required
from .config import Settings
from .http_server.protocol import ServerConnection, ServerState
from .routes import RoutesError

log = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(settings))


async def serve(settings: Settings, app: App | None = None) -> int:
    """Listen until SIGTERM or SIGINT, then drain; returns the process exit code."""
    if app is None:
        try:
            app = App(settings)
        except (StoreError, RoutesError) as exc:
            log.error("%s", exc)
            return 2
    if not settings.is_loopback and not keys_required(settings, app.keys) and not settings.allow_open:
        log.error("refusing to listen on %s without client keys: set AGPROXY_API_KEYS or run "
                  "`antigravity-proxy keys add NAME` (or AGPROXY_ALLOW_OPEN=on to serve anyone who can connect)",
                  settings.host)
        await app.aclose()
        return 2
    try:
        listener = await Listener.start(app)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        await app.aclose()
        return 1
    app.start()
    log.info("antigravity-proxy %s listening on http://%s:%d (data in %s)", __version__, *listener.address,
             settings.data_dir)
    sd_notify.notify("READY=1", "STATUS=listening on http://%s:%d" % listener.address)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(app))  # connections and streams carry on
    interval = sd_notify.watchdog_interval()
    watchdog = loop.create_task(sd_notify.keep_alive(interval)) if interval else None
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if watchdog is not None:
            watchdog.cancel()
    sd_notify.notify("STOPPING=1")
    log.info("stopping: no new connections; draining %d in-flight requests", len(listener.state.tasks))
    await listener.stop(settings.drain_timeout)
    await app.aclose()
    log.info("stopped")
    return 0


def _reload(app: App) -> None:
    """SIGHUP: settings from the environment and AGPROXY_ENV_FILE again, then routes, keys and
    accounts; a broken file keeps what is in use and says why."""
    sd_notify.reloading()
    try:
        settings = config.load(env_file.environment(os.environ, config.secret_names()))
    except (config.ConfigError, env_file.EnvFileError) as exc:
        log.error("reload refused, the running settings stay: %s", exc)
    else:
        app.reload(settings)
        log.info("reloaded settings, routes, keys and accounts")
    sd_notify.notify("READY=1")


class Listener:
    """The listening socket and the connections it accepted."""

    def __init__(self, server: asyncio.Server, state: ServerState) -> None:
        self.server = server
        self.state = state
        self.address: tuple[str, int] = server.sockets[0].getsockname()[:2]

    @classmethod
    async def start(cls, app: App) -> Listener:
        settings = app.settings
        state = ServerState(settings, app.router, app.render_error)
        server = await asyncio.get_running_loop().create_server(
            lambda: ServerConnection(state), settings.host, settings.port, reuse_address=True, backlog=1024
        )
        return cls(server, state)

    async def stop(self, drain_timeout: float) -> None:
        """Stop accepting, let in-flight requests finish up to the timeout, cancel the rest."""
        self.server.close()
        state = self.state
        state.begin_shutdown()
        if state.tasks:
            _, pending = await asyncio.wait(set(state.tasks), timeout=drain_timeout)
            if pending:
                log.warning("drain timeout: cancelling %d requests still running", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        for connection in list(state.connections):
            connection.shutdown()
