#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite:
#   .venv            the package with its `test` extra (pytest, hypothesis, trustme, SDKs)
#   tests/.clients   the real CLIs the e2e tests drive, pinned (npm)
# Extra arguments go to pytest, e.g. tests/run.sh -m "unit or protocol" -x
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.330

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

clients=tests/.clients
if ! grep -qs "\"version\": \"$CLAUDE_CODE_VERSION\"" "$clients/node_modules/@anthropic-ai/claude-code/package.json"; then
  npm install --prefix "$clients" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >/dev/null
fi

exec .venv/bin/python -m pytest "$@"
