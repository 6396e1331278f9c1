#!/usr/bin/env bash
# Runs the whole test suite: unit, property, simulator, crash and multi-node tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
# Injected storage faults need sled's failpoints, a feature the shipped build never has.
cargo test -p yrd-ledger --features failpoints --test faults
# Every fuzz target already ran above on stable, on its corpus and seeded
# mutants (tests/tests/fuzz_smoke.rs). This is the same short run under
# libFuzzer, about a minute plus the instrumented build (fuzz/README.md), with
# YRD_FUZZ_SMOKE=1 only; it skips itself, saying why, otherwise or without
# nightly or cargo-fuzz, and fails on any crash.
./scripts/fuzz-smoke.sh
