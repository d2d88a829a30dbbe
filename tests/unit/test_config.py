"""Configuration: the env table parses its defaults, rejects bad values in one line, matches the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from daemon import config

pytestmark = pytest.mark.unit

README = Path(__file__).parent.parent.parent / "README.md"


def test_every_default_parses_and_fills_every_setting() -> None:
    settings = config.load({"HOME": "/home/u"})
    assert {f.name for f in dataclasses.fields(config.Settings)} == {var.field for var in config.ENV}
    assert settings.host == "127.0.0.1"
    assert settings.port == 9045
    assert settings.data_dir == Path("/home/u/.local/share/antigravity-proxy")
    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.upstream_urls[0].startswith("https://")
    assert settings.https_proxy is None
    assert settings.is_loopback


def test_xdg_data_home_sets_the_default_data_dir() -> None:
    assert config.load({"XDG_DATA_HOME": "/x"}).data_dir == Path("/x/antigravity-proxy")


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("AGPROXY_PORT", "abc", "a TCP port"),
        ("AGPROXY_PORT", "70000", "a TCP port"),
        ("AGPROXY_HOST", "example.com", "an IP address"),
        ("AGPROXY_LOG_LEVEL", "loud", "debug, info"),
        ("AGPROXY_MAX_BODY_BYTES", "12 parsecs", "a size"),
        ("AGPROXY_HEADER_TIMEOUT", "-1", "seconds > 0"),
        ("AGPROXY_UPSTREAM_URLS", "ftp://x", "http(s) URLs"),
        ("AGPROXY_ACCESS_LOG", "maybe", "on or off"),
        ("HTTPS_PROXY", "not a url", "an http(s) URL"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(name: str, value: str, accepts: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load({name: value})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={value!r} is not valid")
    assert accepts in message


def test_a_bad_secret_is_not_echoed() -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load({"AGPROXY_OAUTH_CLIENT_SECRET": "   "})
    assert "<hidden>" in str(info.value)


def test_the_client_secret_never_shows_in_a_repr() -> None:
    settings = config.load({"AGPROXY_OAUTH_CLIENT_SECRET": "GOCSPX-topsecret"})
    assert "topsecret" not in repr(settings)
    assert settings.oauth_client_secret.reveal() == "GOCSPX-topsecret"


def test_sizes_accept_units() -> None:
    assert config.load({"AGPROXY_MAX_BODY_BYTES": "512KiB"}).max_body_bytes == 512 * 1024
    assert config.load({"AGPROXY_MAX_BODY_BYTES": "2m"}).max_body_bytes == 2 * 1024 * 1024
    assert config.load({"AGPROXY_MAX_BODY_BYTES": "1000"}).max_body_bytes == 1000


def test_user_agent_carries_the_client_version() -> None:
    settings = config.load({"AGPROXY_CLIENT_VERSION": "9.9.9"})
    assert settings.user_agent == "antigravity/ide/9.9.9 darwin/arm64"
    custom = config.load({"AGPROXY_USER_AGENT": "antigravity/{version} linux/amd64", "AGPROXY_CLIENT_VERSION": "1.2.3"})
    assert custom.user_agent == "antigravity/1.2.3 linux/amd64"


def test_proxy_variables_are_read_in_both_spellings() -> None:
    settings = config.load({"https_proxy": "http://proxy:3128", "NO_PROXY": "localhost, .internal"})
    assert settings.https_proxy == "http://proxy:3128"
    assert settings.no_proxy == ("localhost", ".internal")


def test_upstream_urls_keep_their_order_without_trailing_slashes() -> None:
    settings = config.load({"AGPROXY_UPSTREAM_URLS": "http://127.0.0.1:1/, http://127.0.0.1:2"})
    assert settings.upstream_urls == ("http://127.0.0.1:1", "http://127.0.0.1:2")


def test_the_readme_lists_every_variable_exactly_as_the_table_says() -> None:
    assert config.env_table_markdown() in README.read_text()
