"""The daemon's `GET /health`, as a bare ASGI app, so uvicorn can serve the same work.

Benchmark-only (bench/server_bench.py runs it under `uvicorn --http h11`); the daemon
never imports this.  The body has the daemon's shape and is built the same way
(a fresh dict per request, orjson.dumps, `content-type: application/json`, explicit
content-length), see daemon/handlers/status.py and daemon/http_server/response.py.
Anything other than `GET /health` gets a small JSON 404.  No framework: a framework's
routing and request objects would be measured as "uvicorn" too.

    cd /work/main && .venv/bin/python -m uvicorn bench.health_asgi:app --http h11 --loop uvloop \\
        --host 127.0.0.1 --port 9046
"""

from __future__ import annotations

import time

import orjson

try:  # same version string as the daemon, so both bodies have the same length
    from daemon import __version__ as VERSION
except ImportError:  # pragma: no cover - bench run outside the project
    VERSION = "0.0.0"

STARTED_AT = time.monotonic()
JSON = b"application/json"
NOT_FOUND = orjson.dumps({"error": {"type": "not_found", "message": "no route", "code": 404}})


async def app(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "http":
        if scope["method"] == "GET" and scope["path"] == "/health":
            status = 200
            body = orjson.dumps(
                {
                    "status": "ok",
                    "version": VERSION,
                    "uptime_s": round(time.monotonic() - STARTED_AT, 3),
                    "accounts": {"total": 0, "by_state": {}},
                }
            )
        else:
            status, body = 404, NOT_FOUND
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", JSON), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif kind == "lifespan":  # answer it, so uvicorn does not log "lifespan unsupported"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
