"""text_table.render: the padded table the CLI lists and /quota?format=table print."""

from __future__ import annotations

import pytest

from daemon.text_table import render

pytestmark = pytest.mark.unit


def test_pads_each_column_to_its_widest_cell() -> None:
    rows = [["NAME", "STATE", "NOTE"], ["a", "active", "-"], ["longer", "x", "something"]]
    assert render(rows) == (
        "NAME    STATE   NOTE\n"
        "a       active  -\n"
        "longer  x       something\n"
    )


def test_no_line_ends_in_spaces() -> None:
    text = render([["A", "B"], ["wide cell", ""], ["x", ""]])
    assert text == "A          B\nwide cell\nx\n"
    assert all(line == line.rstrip() for line in text.splitlines())


def test_a_header_alone_and_no_rows() -> None:
    assert render([["ID", "EMAIL"]]) == "ID  EMAIL\n"
    assert render([]) == ""
