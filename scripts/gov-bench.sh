#!/usr/bin/env bash
# Throughput and commit latency while a fifth validator joins (issue 10,
# BENCHMARKS.md "Governance"): runs `yrd-testnet bench`, and WHEN seconds into the
# load a governance proposal adds the validator "suzhou" (three agencies approve),
# then starts its node from an empty data directory; it catches up under load and
# votes from the effective height. Run it once with and once without the addition:
#
#   scripts/gov-bench.sh RATE DURATION [WHEN|none]     e.g. scripts/gov-bench.sh 2000 60 20
#
# Needs release binaries (cargo build --release --bins). Prints the bench's JSON line
# and, with an addition, the heights of the approval and the effective height.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:?rate}; duration=${2:?duration}; when=${3:-20}
bin=target/release
dir=$(mktemp -d /tmp/yrd-gov-bench.XXXX)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null
  kill -TERM "$bench_pid" 2>/dev/null
  true
}
trap cleanup EXIT
"$bin/yrd-testnet" bench --rate "$rate" --duration "$duration" --json --dir "$dir/net" > "$dir/bench.out" 2>&1 &
bench_pid=$!
if [ "$when" != "none" ]; then
  # Wait for the testnet to be up and the load to start.
  for _ in $(seq 1 120); do [ -f "$dir/net/testnet.json" ] && break; sleep 0.5; done
  sleep "$when"
  sh=$(python3 -c "import json;print(json.load(open('$dir/net/testnet.json'))['nodes'][0]['api'])")
  yrd="$bin/yrd"
  mkdir -p "$dir/suzhou"
  vk=$("$yrd" keygen --out "$dir/suzhou/validator.key")
  id=$("$yrd" gov propose --node "$sh" --key "$dir/net/shanghai/admin.key" --summary "Suzhou joins" \
        --change "add-validator:suzhou:JS:$vk" --wait | sed -n 1p)
  for a in jiangsu zhejiang; do "$yrd" gov approve --node "$sh" --key "$dir/net/$a/admin.key" "$id" --wait >/dev/null; done
  "$yrd" gov show --node "$sh" "$id" | grep -E "state|effective"
  peers=$(grep -o '"/ip4/[^"]*"' "$dir/net/shanghai/node.toml" | paste -sd, -)
  sh_peer=$(grep -o '"/ip4/[^"]*"' "$dir/net/jiangsu/node.toml" | head -1)
  cat > "$dir/suzhou/node.toml" <<EOF
name = "suzhou"
genesis = "$dir/net/genesis.json"
key = "$dir/suzhou/validator.key"
data_dir = "$dir/suzhou/data"
listen = "/ip4/127.0.0.1/tcp/0"
api = "127.0.0.1:0"
peers = [$peers, $sh_peer]
EOF
  "$yrd" node --config "$dir/suzhou/node.toml" > "$dir/suzhou/node.log" 2>&1 &
  node_pid=$!
  echo "suzhou started (pid $node_pid), log $dir/suzhou/node.log"
fi
wait "$bench_pid" || true
tail -1 "$dir/bench.out"
if [ -n "$node_pid" ]; then
  grep -c "committed" "$dir/suzhou/node.log" | sed 's/^/suzhou committed blocks: /'
fi
