#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite:
#   .venv            the package with its `test` extra (pytest, hypothesis, trustme, SDKs)
#   tests/.clients   the real CLIs the e2e tests drive, pinned (npm)
# The browser tests (tests/browser) also need Debian's chromium and chromium-driver (.ci/run
# installs them); without them they skip, or fail when CI is set. Screenshots: tests/artifacts/screenshots/
# Extra arguments go to pytest, e.g. tests/run.sh -m "unit or protocol" -x
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.330
CODEX_VERSION=0.169.0
REFERENCE_TOKENIZER_SDK=0.30.0

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

clients=tests/.clients
if ! grep -qs "\"version\": \"$CLAUDE_CODE_VERSION\"" "$clients/node_modules/@anthropic-ai/claude-code/package.json"; then
  npm install --prefix "$clients" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >/dev/null
fi
if ! grep -qs "\"version\": \"$CODEX_VERSION\"" "$clients/node_modules/@openai/codex/package.json"; then
  npm install --prefix "$clients" --no-audit --no-fund --loglevel=error \
    "@openai/codex@$CODEX_VERSION" >/dev/null
fi

# A reference tokenizer for the count_tokens accuracy test: the Claude tokenizer that older
# releases of the anthropic SDK shipped (no network is used by the tests themselves).
if [[ ! -s $clients/claude-tokenizer.json ]]; then
  scratch=$(mktemp -d)
  .venv/bin/pip download --quiet --disable-pip-version-check --no-deps "anthropic==$REFERENCE_TOKENIZER_SDK" -d "$scratch"
  .venv/bin/python -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("anthropic/tokenizer.json"))' \
    "$scratch"/anthropic-*.whl > "$clients/claude-tokenizer.json"
  rm -rf "$scratch"
fi

exec .venv/bin/python -m pytest "$@"
