#!/usr/bin/env bash
# Run the shared peer benchmark (a fast fake upstream, a load generator, the Node peer
# antigravity-claude-proxy and a direct baseline, inside a private network namespace)
# with this daemon added as a peer. The harness lives beside the repository in
# ../shared/bench (it is not part of this project); it is copied to a scratch directory,
# bench/peers/agproxy.sh is added to its peers.d/, and its results are copied back to
# bench/results/peers-<stamp>/.
#   bench/run_peers.sh [--quick] [--peers direct,acp,agproxy] [...run_peers.sh options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
harness=${AGPROXY_BENCH_HARNESS:-$repo/../shared/bench}
[[ -x $harness/run_peers.sh ]] || { echo "no peer harness at $harness (set AGPROXY_BENCH_HARNESS)" >&2; exit 1; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$harness" "$scratch/bench"
chmod -R u+w "$scratch/bench"
rm -f "$scratch/bench/peers.d/agproxy.sh.example"
cp "$here/peers/agproxy.sh" "$scratch/bench/peers.d/agproxy.sh"

out=$repo/bench/results/peers-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
AGPROXY_SRC=$repo bash "$scratch/bench/run_peers.sh" --out "$out" "$@"
echo "results: $out/summary.md"
