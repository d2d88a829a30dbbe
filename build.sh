#!/usr/bin/env bash
# Build dist/antigravity-proxy.pyz, a single-file zipapp (shiv), and its sha256.
# The zipapp holds compiled uvloop and orjson: it runs on the platform and Python
# version it was built with (here: this machine's python3).
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
venv=.venv-build
version_of() { "$1" -c 'import sys; print(sys.version_info[:2])'; }
if [[ -x $venv/bin/python ]] && [[ $(version_of "$venv/bin/python") != $(version_of "$python") ]]; then
  rm -rf "$venv"  # the zipapp's compiled extensions must match the Python it runs on
fi
if [[ ! -x $venv/bin/shiv ]]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "shiv==1.0.8"
fi

version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
mkdir -p dist
rm -f dist/antigravity-proxy.pyz dist/antigravity-proxy.pyz.sha256
"$venv/bin/shiv" --quiet \
  --entry-point daemon.cli:main \
  --output-file dist/antigravity-proxy.pyz \
  --python '/usr/bin/env python3' \
  --reproducible --compile-pyc \
  . >/dev/null
(cd dist && sha256sum antigravity-proxy.pyz > antigravity-proxy.pyz.sha256)
echo "built dist/antigravity-proxy.pyz (version $version, $(du -h dist/antigravity-proxy.pyz | cut -f1))" >&2
