#!/usr/bin/env bash
# Builds everything (release) and starts the local four-agency testnet:
# Shanghai, Jiangsu, Zhejiang and Anhui validators on 127.0.0.1, sample
# attestations finalised, a lender's offline verification shown. Ctrl-C stops it.
# Extra arguments go to yrd-testnet (e.g. --dir DIR, or: bench --rate 1000 --duration 30).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
exec target/release/yrd-testnet "$@"
