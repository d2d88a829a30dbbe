"""AGPROXY_ENV_FILE: parsing, precedence, and the refusal of a world-readable secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon import config
from daemon.env_file import EnvFileError, environment, parse, read

pytestmark = pytest.mark.unit

SECRETS = config.secret_names()


def test_lines_comments_quotes_and_export() -> None:
    text = "# a comment\n\nAGPROXY_PORT=9100\nexport AGPROXY_LOG_LEVEL = debug\nAGPROXY_MODEL_MAP='a=b,c=d'\nX=\"q\"\n"
    assert parse(text) == {"AGPROXY_PORT": "9100", "AGPROXY_LOG_LEVEL": "debug", "AGPROXY_MODEL_MAP": "a=b,c=d", "X": "q"}


@pytest.mark.parametrize("line", ["no equals sign", "=value", "1ABC=x", "BAD-NAME=x"])
def test_a_malformed_line_names_its_number(line: str) -> None:
    with pytest.raises(EnvFileError, match="line 2"):
        parse(f"A=1\n{line}\n", "env")


def test_the_real_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("AGPROXY_PORT=9100\nAGPROXY_LOG_LEVEL=debug\n")
    merged = environment({"AGPROXY_ENV_FILE": str(path), "AGPROXY_PORT": "9200"}, SECRETS)
    assert merged["AGPROXY_PORT"] == "9200" and merged["AGPROXY_LOG_LEVEL"] == "debug"
    assert config.load(merged).port == 9200
    assert environment({"AGPROXY_PORT": "1"}, SECRETS) == {"AGPROXY_PORT": "1"}  # no file: unchanged


def test_a_secret_in_a_world_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("AGPROXY_ADMIN_PASSWORD=hunter22\n")
    os.chmod(path, 0o644)
    with pytest.raises(EnvFileError, match="AGPROXY_ADMIN_PASSWORD.*chmod 600") as info:
        read(path, SECRETS)
    assert "hunter22" not in str(info.value)
    os.chmod(path, 0o600)
    assert read(path, SECRETS) == {"AGPROXY_ADMIN_PASSWORD": "hunter22"}
    path.write_text("AGPROXY_PORT=9100\n")
    os.chmod(path, 0o644)
    assert read(path, SECRETS) == {"AGPROXY_PORT": "9100"}  # nothing secret: readable is fine


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="cannot be read"):
        environment({"AGPROXY_ENV_FILE": str(tmp_path / "nope")}, SECRETS)
