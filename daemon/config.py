"""Configuration: one table of environment variables, read once into a frozen Settings.

`ENV` is the single source of truth: `load()` parses it, `--help-env` prints it and the
README's table is checked against it by a test. Nothing else reads os.environ.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import limits
from .pool.selection import STRATEGIES
from .redact import Secret


class ConfigError(Exception):
    """A bad configuration value; the message is one line meant for the user."""


# --- value parsers: each raises ValueError when the text is not acceptable ----------


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port < 65536:
        raise ValueError
    return port


def _positive_int(text: str) -> int:
    number = int(text)
    if number <= 0:
        raise ValueError
    return number


_SIZE_UNITS = {"": 1, "b": 1, "k": limits.KiB, "kib": limits.KiB, "m": limits.MiB, "mib": limits.MiB}


def _size(text: str) -> int:
    stripped = text.strip().lower()
    digits = stripped.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = _SIZE_UNITS[stripped[len(digits):].strip()]  # KeyError: unknown unit
    return _positive_int(digits) * unit


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError
    return value


def _url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    return text.strip().rstrip("/")


def _url_list(text: str) -> tuple[str, ...]:
    urls = tuple(_url(item) for item in text.split(",") if item.strip())
    if not urls:
        raise ValueError
    return urls


def _optional_url(text: str) -> str | None:
    return _url(text) if text.strip() else None


def _host_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip().lower() for item in text.split(",") if item.strip())


def _api_keys(text: str) -> tuple[tuple[str, Secret], ...]:
    keys = []
    for position, item in enumerate(filter(None, (piece.strip() for piece in text.split(","))), 1):
        name, equals, key = item.partition("=")
        name, key = (name.strip(), key.strip()) if equals else (f"key{position}", item)
        if not name or len(key) < 8:
            raise ValueError  # a key shorter than 8 characters is a typo or a guessable key
        keys.append((name, Secret(key)))
    return tuple(keys)


def _model_map(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (piece.strip() for piece in text.split(","))):
        pattern, equals, target = item.partition("=")
        if not equals or not pattern.strip() or not target.strip():
            raise ValueError
        pairs.append((pattern.strip(), target.strip()))
    return tuple(pairs)


def _rewrites(text: str) -> tuple[tuple[str, str], ...]:
    if not text.strip():
        return ()
    table = orjson.loads(text)
    if not isinstance(table, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in table.items()):
        raise ValueError
    return tuple(table.items())


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise ValueError
    return number


def _percent(text: str) -> float:
    value = float(text.strip().rstrip("%"))
    if not 0 <= value <= 100:
        raise ValueError
    return value


def _optional_path(text: str) -> Path | None:
    return Path(text.strip()).expanduser() if text.strip() else None


def _optional_secret(text: str) -> Secret | None:
    return Secret(text) if text else None


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text.strip()


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError
        return value

    return parse


def _switch(text: str) -> bool:
    return _choice("on", "off", "true", "false", "1", "0", "yes", "no")(text) in ("on", "true", "1", "yes")


def _bind_host(text: str) -> str:
    host = text.strip()
    if host != "localhost":
        ipaddress.ip_address(host)  # ValueError for anything but an IP literal
    return host


def _default_data_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_DATA_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "antigravity-proxy")


# The Antigravity desktop client's installed-app credentials, public in every peer
# (upstream doc §1.1). The secret is kept split so secret scanners do not flag it.
_ANTIGRAVITY_CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
_ANTIGRAVITY_CLIENT_SECRET = "GOCSPX" + "-" + "K58FWR486LdLJ1mLB8sXC4z6qDAf"


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    field: str
    default: str | Callable[[Mapping[str, str]], str]
    parse: Callable[[str], Any]
    accepts: str
    help: str
    secret: bool = False
    shown_default: str = ""  # how the README shows a default computed from the environment

    def default_text(self, environ: Mapping[str, str]) -> str:
        return self.default(environ) if callable(self.default) else self.default


def _s(seconds: float) -> str:
    return f"{seconds:g}"


def _size_text(size: int) -> str:
    """A default size as people write it: 16KiB, 32MiB."""
    for unit, name in ((limits.MiB, "MiB"), (limits.KiB, "KiB")):
        if size % unit == 0:
            return f"{size // unit}{name}"
    return str(size)


ENV: tuple[Var, ...] = (
    Var("AGPROXY_HOST", "host", "127.0.0.1", _bind_host, "an IP address or localhost",
        "address to listen on"),
    Var("AGPROXY_PORT", "port", "9045", _port, "a TCP port 1-65535 (0 picks a free one)", "port to listen on"),
    Var("AGPROXY_DATA_DIR", "data_dir", _default_data_dir, lambda t: Path(_text(t)).expanduser(), "a directory path",
        "accounts, keys and persisted state ($XDG_DATA_HOME/antigravity-proxy when XDG_DATA_HOME is set)",
        shown_default="~/.local/share/antigravity-proxy"),
    Var("AGPROXY_API_KEYS", "api_keys", "", _api_keys, "comma-separated name=key pairs (or bare keys)",
        "client keys; with none, only loopback clients are served", secret=True),
    Var("AGPROXY_ALLOW_OPEN", "allow_open", "off", _switch, "on or off",
        "allow listening beyond loopback with no AGPROXY_API_KEYS (anyone who can connect may use your accounts)"),
    Var("AGPROXY_LOG_LEVEL", "log_level", "info", _choice("debug", "info", "warning", "error"),
        "debug, info, warning or error", "log verbosity (stderr)"),
    Var("AGPROXY_LOG_FORMAT", "log_format", "plain", _choice("plain", "json"), "plain or json",
        "log line format"),
    Var("AGPROXY_ACCESS_LOG", "access_log", "on", _switch, "on or off", "one log line per request"),
    Var("AGPROXY_UPSTREAM_URLS", "upstream_urls",
        "https://daily-cloudcode-pa.googleapis.com,https://cloudcode-pa.googleapis.com", _url_list,
        "comma-separated http(s) URLs", "Cloud Code base URLs, in fallback order"),
    Var("AGPROXY_OAUTH_AUTH_URL", "oauth_auth_url", "https://accounts.google.com/o/oauth2/v2/auth", _url,
        "an http(s) URL", "Google OAuth authorization endpoint"),
    Var("AGPROXY_OAUTH_TOKEN_URL", "oauth_token_url", "https://oauth2.googleapis.com/token", _url,
        "an http(s) URL", "Google OAuth token endpoint"),
    Var("AGPROXY_USERINFO_URL", "userinfo_url", "https://www.googleapis.com/oauth2/v1/userinfo", _url,
        "an http(s) URL", "Google userinfo endpoint (learns the account's email)"),
    Var("AGPROXY_OAUTH_CLIENT_ID", "oauth_client_id", _ANTIGRAVITY_CLIENT_ID, _text, "a client id",
        "OAuth client id (default: the public Antigravity desktop client)"),
    Var("AGPROXY_OAUTH_CLIENT_SECRET", "oauth_client_secret", _ANTIGRAVITY_CLIENT_SECRET,
        lambda t: Secret(_text(t)), "a client secret", "OAuth client secret (default: the public Antigravity one)",
        secret=True),
    Var("AGPROXY_OAUTH_CALLBACK_PORT", "oauth_callback_port", "51121", _port, "a TCP port 1-65535",
        "loopback port for the login callback (the next ones are tried when it is busy)"),
    Var("AGPROXY_OAUTH_REDIRECT_URL", "oauth_redirect_url", "", _optional_url, "an http(s) URL or empty",
        "redirect URL to register instead of http://localhost:<port>/oauth-callback (a reverse-proxied callback)"),
    Var("AGPROXY_CLIENT_VERSION", "client_version", "2.5.5", _text, "a version like 2.5.5",
        "Antigravity client version announced upstream; raise it when the upstream says the version is no longer supported"),
    Var("AGPROXY_USER_AGENT", "user_agent", "antigravity/ide/{version} darwin/arm64", _text,
        "a User-Agent; {version} is replaced by AGPROXY_CLIENT_VERSION", "User-Agent sent upstream"),
    Var("AGPROXY_MAX_HEADER_BYTES", "max_header_bytes", _size_text(limits.MAX_HEADER_BYTES), _size,
        "a size like 16384, 16KiB or 1MiB", "largest request head; larger answers 431"),
    Var("AGPROXY_MAX_BODY_BYTES", "max_body_bytes", _size_text(limits.MAX_BODY_BYTES), _size, "a size like 1048576, 512KiB or 32MiB",
        "largest request body; larger answers 413"),
    Var("AGPROXY_HEADER_TIMEOUT", "header_timeout", _s(limits.HEADER_READ_TIMEOUT), _seconds, "seconds > 0",
        "time allowed to send a request head; slower clients get 408"),
    Var("AGPROXY_KEEPALIVE_TIMEOUT", "keepalive_timeout", _s(limits.KEEPALIVE_TIMEOUT), _seconds, "seconds > 0",
        "idle keep-alive connections are closed after this"),
    Var("AGPROXY_MAX_CONNECTIONS", "max_connections", str(limits.MAX_CONNECTIONS), _positive_int,
        "a whole number > 0", "concurrent client connections; more get 503"),
    Var("AGPROXY_DRAIN_TIMEOUT", "drain_timeout", _s(limits.DRAIN_TIMEOUT), _seconds, "seconds > 0",
        "on SIGTERM, how long in-flight requests may finish"),
    Var("AGPROXY_UPSTREAM_CONNECT_TIMEOUT", "upstream_connect_timeout", _s(limits.UPSTREAM_CONNECT_TIMEOUT),
        _seconds, "seconds > 0", "upstream TCP + TLS + proxy CONNECT"),
    Var("AGPROXY_UPSTREAM_FIRST_BYTE_TIMEOUT", "upstream_first_byte_timeout",
        _s(limits.UPSTREAM_FIRST_BYTE_TIMEOUT), _seconds, "seconds > 0", "wait for the upstream response head"),
    Var("AGPROXY_UPSTREAM_IDLE_TIMEOUT", "upstream_idle_timeout", _s(limits.UPSTREAM_IDLE_TIMEOUT), _seconds,
        "seconds > 0", "longest upstream silence inside a response body"),
    Var("AGPROXY_UPSTREAM_POOL_SIZE", "upstream_pool_size", str(limits.UPSTREAM_POOL_SIZE), _positive_int,
        "a whole number > 0", "idle keep-alive connections kept per upstream origin"),
    Var("AGPROXY_STREAM_HEARTBEAT", "stream_heartbeat", "4", _seconds, "seconds > 0",
        "send a keep-alive frame when a stream has been silent this long (proxies cut idle streams)"),
    Var("AGPROXY_MODEL_MAP", "model_map", "", _model_map, "comma-separated pattern=model pairs",
        "extra client→upstream model names, tried before the built-in family defaults (e.g. claude-opus-*=claude-opus-4-6-thinking)"),
    Var("AGPROXY_IDENTITY_REWRITES", "identity_rewrites", "", _rewrites, 'a JSON object {"sentence": "replacement"}',
        "system-text sentences to reword before they reach the upstream, besides the built-in Claude Agent SDK and "
        "Codex identity lines (the upstream answers them with a false 429)"),
    Var("AGPROXY_SSE_MAX_EVENT_BYTES", "sse_max_event_bytes", _size_text(limits.SSE_MAX_EVENT_BYTES), _size, "a size like 16MiB",
        "largest single upstream SSE event"),
    Var("AGPROXY_STRATEGY", "strategy", "sticky", _choice(*STRATEGIES),
        "sticky, round-robin or quota-first",
        "account choice: keep a conversation on one account (prompt cache), rotate, or most quota first"),
    Var("AGPROXY_MAX_WAIT", "max_wait", "10", _seconds, "seconds > 0",
        "a rate limit that resets within this is waited out on the same account; longer ones move on"),
    Var("AGPROXY_RETRY_DEADLINE", "retry_deadline", "60", _seconds, "seconds > 0",
        "total time one request may spend on retries and waits before its first byte"),
    Var("AGPROXY_MAX_CONCURRENT_PER_ACCOUNT", "max_concurrent_per_account", "0", _count, "a whole number (0: no cap)",
        "concurrent upstream requests per account"),
    Var("AGPROXY_QUOTA_REFRESH", "quota_refresh", "600", _seconds, "seconds > 0",
        "how often each account's quota is read from the upstream, in the background"),
    Var("AGPROXY_QUOTA_RESERVE", "quota_reserve", "0", _percent, "a percentage 0-100",
        "accounts at or below this remaining quota for a model family are skipped while others can serve"),
    Var("AGPROXY_ROUTES_FILE", "routes_file", "", _optional_path, "a file path or empty",
        "JSON of model aliases with fallback chains (reloaded on SIGHUP)"),
    Var("AGPROXY_ADMIN_PASSWORD", "admin_password", "", _optional_secret, "a password or empty",
        "basic-auth password (user admin) of the admin page and /quota, /usage; required beyond loopback",
        secret=True),
    Var("AGPROXY_ENV_FILE", "env_file", "", _optional_path, "a file path or empty",
        "KEY=VALUE lines read at start and on SIGHUP (real environment variables win; refused when it holds a "
        "secret and every user can read it)"),
    Var("HTTPS_PROXY", "https_proxy", "", _optional_url, "an http(s) URL or empty",
        "outbound proxy for https upstreams (HTTP CONNECT); https_proxy also read"),
    Var("HTTP_PROXY", "http_proxy", "", _optional_url, "an http(s) URL or empty",
        "outbound proxy for plain http upstreams; http_proxy also read"),
    Var("NO_PROXY", "no_proxy", "", _host_list, "comma-separated hosts, .domains or *",
        "hosts reached directly, bypassing the proxies; no_proxy also read"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    api_keys: tuple[tuple[str, Secret], ...]
    allow_open: bool
    log_level: str
    log_format: str
    access_log: bool
    upstream_urls: tuple[str, ...]
    oauth_auth_url: str
    oauth_token_url: str
    userinfo_url: str
    oauth_client_id: str
    oauth_client_secret: Secret
    oauth_callback_port: int
    oauth_redirect_url: str | None
    client_version: str
    user_agent: str
    max_header_bytes: int
    max_body_bytes: int
    header_timeout: float
    keepalive_timeout: float
    max_connections: int
    drain_timeout: float
    upstream_connect_timeout: float
    upstream_first_byte_timeout: float
    upstream_idle_timeout: float
    upstream_pool_size: int
    stream_heartbeat: float
    model_map: tuple[tuple[str, str], ...]
    identity_rewrites: tuple[tuple[str, str], ...]
    strategy: str
    max_wait: float
    retry_deadline: float
    max_concurrent_per_account: int
    quota_refresh: float
    quota_reserve: float
    routes_file: Path | None
    admin_password: Secret | None
    env_file: Path | None
    sse_max_event_bytes: int
    https_proxy: str | None
    http_proxy: str | None
    no_proxy: tuple[str, ...]

    @property
    def is_loopback(self) -> bool:
        return self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback


def _raw_value(var: Var, environ: Mapping[str, str]) -> str | None:
    value = environ.get(var.name)
    if value is None and var.name.endswith("_PROXY"):
        value = environ.get(var.name.lower())  # curl and requests read both spellings
    return value


def load(environ: Mapping[str, str]) -> Settings:
    """Parse every variable of ENV; the first bad one raises ConfigError."""
    values: dict[str, Any] = {}
    for var in ENV:
        raw = _raw_value(var, environ)
        text = var.default_text(environ) if raw is None else raw
        try:
            values[var.field] = var.parse(text)
        except (ValueError, KeyError):
            shown = "<hidden>" if var.secret else repr(raw)
            raise ConfigError(f"{var.name}={shown} is not valid: expected {var.accepts}") from None
    values["user_agent"] = values["user_agent"].replace("{version}", values["client_version"])
    return Settings(**values)


def env_table_markdown() -> str:
    """The README's environment table, generated from ENV."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for var in ENV:
        if var.secret:
            default = "(built in)"
        elif callable(var.default):
            default = var.shown_default
        else:
            default = var.default or "(empty)"
        rows.append(f"| `{var.name}` | `{default}` | {var.accepts} | {var.help} |")
    return "\n".join(rows)


def secret_names() -> frozenset[str]:
    """The variables whose values are secrets (an env file holding one must be private)."""
    return frozenset(var.name for var in ENV if var.secret)
