"""Every default size and time limit, with its unit and the reason for its value.

Settings (config.py) can override each of these; this module is the one place the
numbers live.
"""

BYTES = 1
KiB = 1024 * BYTES
MiB = 1024 * KiB
SECONDS = 1.0

# --- server side -------------------------------------------------------------------
MAX_HEADER_BYTES = 16 * KiB  # h11's default and nginx's large_client_header_buffers; 431
MAX_BODY_BYTES = 32 * MiB  # a few base64 images or a PDF fit; larger answers 413
HEADER_READ_TIMEOUT = 10 * SECONDS  # a slowloris client gets 408 and is closed
KEEPALIVE_TIMEOUT = 30 * SECONDS  # idle keep-alive connections close after this
MAX_CONNECTIONS = 1024  # beyond this, new connections get 503 and are closed
DRAIN_TIMEOUT = 30 * SECONDS  # on SIGTERM, in-flight streams get this long to finish
WRITE_HIGH_WATER = 64 * KiB  # transport buffer above which writers wait (backpressure)
PIPELINE_HIGH_WATER = 64 * KiB  # buffered pipelined bytes above which reading pauses

# --- upstream side -----------------------------------------------------------------
UPSTREAM_CONNECT_TIMEOUT = 10 * SECONDS  # TCP + TLS + proxy CONNECT
UPSTREAM_FIRST_BYTE_TIMEOUT = 120 * SECONDS  # thinking models can take long before headers
UPSTREAM_IDLE_TIMEOUT = 300 * SECONDS  # silence between body bytes (long thoughts)
UPSTREAM_POOL_SIZE = 128  # idle keep-alive connections kept per origin (one per concurrent stream at c=128)
UPSTREAM_POOL_IDLE_EXPIRY = 60 * SECONDS  # an idle pooled connection older than this is closed
UPSTREAM_READ_HIGH_WATER = 256 * KiB  # bytes buffered from upstream before reading pauses

# --- SSE ---------------------------------------------------------------------------
# One upstream SSE event can carry a 2.25 MB image thoughtSignature (see the fixture
# generateContent.image.*), so the cap is far above that but still bounded.
SSE_MAX_EVENT_BYTES = 16 * MiB
