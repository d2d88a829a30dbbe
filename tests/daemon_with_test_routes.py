"""`python -m tests.daemon_with_test_routes`: the real daemon process plus the test routes.

Used by tests that need process-level behaviour (signals, exit codes) and a handler that
streams slowly, before any protocol endpoint exists to stream from.
"""

from __future__ import annotations

import asyncio
import os

import uvloop

from daemon import config, log, serve
from daemon.app import App
from tests.support import TestRoutes


async def main() -> int:
    settings = config.load(os.environ)
    app = App(settings)
    TestRoutes().mount(app)
    return await serve.serve(settings, app)


if __name__ == "__main__":
    log.setup("info", "plain")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main()))
