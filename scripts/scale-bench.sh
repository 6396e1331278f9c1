#!/usr/bin/env bash
# The table of issue 12 item 3: N = 4, 7, 10, 16 validators, on loopback and on
# the city-to-city delays (--wan --relay, or --wan with netem when WAN_MODE=netem),
# each at saturation (SAT_RATE offered; the excess is refused 503 at once) and at
# 1,000 attestations/s. One JSON line per run in OUT (default target/scale-bench),
# then the table (scripts/scale-table.py).
#
#   scripts/scale-bench.sh                 # all 16 runs, ~15 min
#   NS="4 16" LINKS="relay" scripts/scale-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/scale-bench}
NS=${NS:-"4 7 10 16"}
LINKS=${LINKS:-"loopback relay"}
SAT_RATE=${SAT_RATE:-6000}
DURATION=${DURATION:-20}
WAN_MODE=${WAN_MODE:-relay}
# 100/s as well shows the latency floor, where CPU does not queue (RATES="100").
RATES=${RATES:-"$SAT_RATE 1000"}
mkdir -p "$OUT"
cargo build --release -q -p yrd-cli -p yrd-testnet
for n in $NS; do
  for links in $LINKS; do
    case $links in
      loopback) flags=() ;;
      relay) if [ "$WAN_MODE" = netem ]; then flags=(--wan); else flags=(--wan --relay); fi ;;
      *) echo "unknown links $links" >&2; exit 2 ;;
    esac
    for rate in $RATES; do
      f="$OUT/n$n-$links-r$rate.json"
      echo "== N=$n links=$links rate=$rate -> $f"
      target/release/yrd-testnet --validators "$n" "${flags[@]}" bench --rate "$rate" \
        --duration "$DURATION" --drain 20 --json > "$OUT/n$n-$links-r$rate.log" 2>&1 || true
      tail -n 1 "$OUT/n$n-$links-r$rate.log" | grep '^{' > "$f" || { echo "   no report; see $OUT/n$n-$links-r$rate.log"; rm -f "$f"; }
    done
  done
done
python3 scripts/scale-table.py "$OUT"
