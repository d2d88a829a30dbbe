#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite.
# Extra arguments go to pytest, e.g. tests/run.sh -m "unit or protocol" -x
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
