# Peer file for the shared peer harness (run_peers.sh sources every peers.d/*.sh):
# this daemon, installed from this checkout, serving the Anthropic Messages API.
# bench/run_peers.sh copies the harness to a scratch directory and adds this file.
PEER_NAME=agproxy
PEER_DESC="antigravity-proxy $(cd "${AGPROXY_SRC:-.}" && git rev-parse --short HEAD 2>/dev/null) (h11 + uvloop + orjson)"
PEER_PORT=9045
PEER_HEALTH=/health
PEER_LOADS="anthropic:/v1/messages"
PEER_HEADERS=""
PEER_MODEL=claude-sonnet-4-5

peer_install() {
  AGPROXY_SRC=${AGPROXY_SRC:?set AGPROXY_SRC to the project checkout}
  python3 -m venv "$PEERS/agproxy-venv"
  "$PEERS/agproxy-venv/bin/pip" install -q --disable-pip-version-check "$AGPROXY_SRC"
}

peer_start() {
  # One account in the daemon's own accounts.json format (schema version 1).
  cat > "$PEER_DATA_DIR/accounts.json" <<JSON
{"schema": "antigravity-proxy/accounts", "version": 1, "accounts": [
  {"id": "bench1", "email": "$FAKE_EMAIL", "refresh_token": "$FAKE_REFRESH_TOKEN",
   "client_id": "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
   "project_id": "$FAKE_PROJECT", "state": "active"}]}
JSON
  chmod 600 "$PEER_DATA_DIR/accounts.json"
  AGPROXY_HOST=127.0.0.1 AGPROXY_PORT=$PEER_PORT AGPROXY_DATA_DIR=$PEER_DATA_DIR \
  AGPROXY_UPSTREAM_URLS=$FAKE_HTTPS_BASE AGPROXY_OAUTH_TOKEN_URL=$FAKE_TOKEN_URL \
  AGPROXY_USERINFO_URL=$FAKE_USERINFO_URL SSL_CERT_FILE=$FAKE_CA_BUNDLE \
    exec "$PEERS/agproxy-venv/bin/python" -m daemon serve
}
