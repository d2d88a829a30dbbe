#!/usr/bin/env bash
# Install (or with --uninstall remove) antigravity-proxy as a systemd service. Idempotent:
# running it again upgrades the zipapp and the unit and keeps the env file and the data.
#   sudo systemd/install.sh [--zipapp dist/antigravity-proxy.pyz]
#   sudo systemd/install.sh --uninstall          # keeps /var/lib/antigravity-proxy (accounts)
set -euo pipefail
cd "$(dirname "$0")/.."

user=antigravity-proxy
lib=/usr/local/lib/antigravity-proxy
wrapper=/usr/local/bin/antigravity-proxy
unit=/etc/systemd/system/antigravity-proxy.service
envdir=/etc/antigravity-proxy
zipapp=dist/antigravity-proxy.pyz

while [[ $# -gt 0 ]]; do
  case $1 in
    --zipapp) zipapp=$2; shift 2 ;;
    --uninstall)
      systemctl disable --now antigravity-proxy.service 2>/dev/null || true
      rm -f "$unit" "$wrapper"
      rm -rf "$lib"
      systemctl daemon-reload
      echo "removed; kept $envdir and /var/lib/antigravity-proxy (accounts): delete them by hand if wanted"
      exit 0 ;;
    *) echo "usage: $0 [--zipapp FILE] | --uninstall" >&2; exit 2 ;;
  esac
done

[[ $(id -u) -eq 0 ]] || { echo "run as root (sudo)" >&2; exit 1; }
[[ -f $zipapp ]] || { echo "$zipapp not found: run ./build.sh first" >&2; exit 1; }

id "$user" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/antigravity-proxy --no-create-home \
  --shell /usr/sbin/nologin "$user"
install -d -m 0755 "$lib"
install -m 0644 "$zipapp" "$lib/antigravity-proxy.pyz"
# The same data and cache directories as the unit, so CLI runs as the service user see its accounts.
cat > "$wrapper" <<'SH'
#!/bin/sh
export AGPROXY_DATA_DIR="${AGPROXY_DATA_DIR:-/var/lib/antigravity-proxy}"
export SHIV_ROOT="${SHIV_ROOT:-/var/cache/antigravity-proxy}"
exec /usr/bin/python3 /usr/local/lib/antigravity-proxy/antigravity-proxy.pyz "$@"
SH
chmod 0755 "$wrapper"
install -m 0644 systemd/antigravity-proxy.service "$unit"
install -d -m 0755 "$envdir"
[[ -f $envdir/env ]] || install -m 0600 systemd/antigravity-proxy.env "$envdir/env"
install -d -m 0700 -o "$user" -g "$user" /var/lib/antigravity-proxy /var/cache/antigravity-proxy
systemctl daemon-reload
systemctl enable --now antigravity-proxy.service
systemctl reload-or-restart antigravity-proxy.service
echo "installed: systemctl status antigravity-proxy; curl -s localhost:9045/health"
