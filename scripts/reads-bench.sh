#!/usr/bin/env bash
# Issue 11's read benchmark (BENCHMARKS.md "Authorised queries"): a fresh testnet
# carrying RATE attestations/s for DURATION s (yrd-testnet bench), and, from
# READS_AFTER s into it, THREADS client threads asking one node for lender-signed
# subject reports back to back for READS_FOR s (yrd-testnet reads).
# Usage: scripts/reads-bench.sh [RATE] [DURATION] [THREADS] [READS_FOR] [DIR]
# BENCH_ARGS (environment) is added to the bench's options, e.g.
# BENCH_ARGS="--block-interval-ms 200".
# Needs the release binaries: cargo build --release --bins
set -euo pipefail
RATE=${1:-1000}; DURATION=${2:-60}; THREADS=${3:-8}; READS_FOR=${4:-30}; DIR=${5:-$(mktemp -d /tmp/yrd-reads.XXXXXX)}
BIN=$(dirname "$0")/../target/release
mkdir -p "$DIR" && rm -rf "$DIR/tn"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
"$BIN/yrd-testnet" bench --rate "$RATE" --duration "$DURATION" --dir "$DIR/tn" ${BENCH_ARGS:-} > "$DIR/bench.txt" 2>&1 &
BENCH=$!
trap 'kill $BENCH 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do [ -f "$DIR/tn/testnet.json" ] && break; sleep 0.5; done
[ -f "$DIR/tn/testnet.json" ] || { echo "the testnet did not start: $DIR/bench.txt"; exit 1; }
"$BIN/yrd-testnet" reads --testnet "$DIR/tn/testnet.json" --threads "$THREADS" --duration "$READS_FOR" --json > "$DIR/reads.txt" 2> "$DIR/reads.err"
STATUS=$?
wait $BENCH || true
trap - EXIT
echo "== writes (yrd-testnet bench --rate $RATE --duration $DURATION ${BENCH_ARGS:-})"
sed -n '/^Bench:/,$p' "$DIR/bench.txt"
echo "== reads (yrd-testnet reads --threads $THREADS --duration $READS_FOR), during the writes"
grep -v '^{' "$DIR/reads.txt"
echo "(files in $DIR)"
exit $STATUS
