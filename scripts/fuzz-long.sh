#!/usr/bin/env bash
# Long coverage-guided libFuzzer runs, one target after another (issue 13: 10^7
# executions per target). Usage:
#   scripts/fuzz-long.sh RUNS MAX_SECONDS TARGET...
# Builds nothing: build first with
#   (cd fuzz && CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-target} cargo +nightly fuzz build -O [-s none])
# (debug assertions and overflow checks come from fuzz/Cargo.toml's release profile;
# --debug-assertions would also turn them on inside curve25519-dalek, twice as slow)
# Each target runs from its seed corpus (fuzz/corpus/T, read only) into a scratch
# corpus, with -seed fixed (printed), until RUNS executions or MAX_SECONDS. One line per
# target: executions, seconds, executions per second, new coverage-corpus size; a crash
# is copied to fuzz/artifacts/T/ with the command that reproduces it, and the script
# exits 1 at the end.
set -u
runs=${1:?RUNS}; max_s=${2:?MAX_SECONDS}; shift 2
cd "$(dirname "$0")/.."
. scripts/fuzz-lib.sh
bin_dir=${FUZZ_TARGET_DIR:-fuzz/target}/$(rustc -vV | sed -n 's/^host: //p')/release
work=${FUZZ_WORK:-$(mktemp -d /var/tmp/yrd-fuzz-long.XXXXXX)}
seed=${FUZZ_SEED:-1337}
failed=()
for t in "$@"; do
    [ -x "$bin_dir/$t" ] || { echo "fuzz-long: $t: no binary in $bin_dir (build first)"; failed+=("$t"); continue; }
    mkdir -p "$work/$t/new" "$work/$t/crash"
    log="$work/$t/log"
    start=$(date +%s)
    if "$bin_dir/$t" "$work/$t/new" "fuzz/corpus/$t" -seed="$seed" -runs="$runs" -max_total_time="$max_s" \
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$work/$t/crash/" -print_final_stats=1 >"$log" 2>&1; then
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        secs=$(( $(date +%s) - start ))
        echo "fuzz-long: $t: ok, ${n:-?} executions in ${secs} s ($(( ${n:-0} / (secs > 0 ? secs : 1) ))/s), seed $seed, corpus $(ls "$work/$t/new" | wc -l) new inputs, $(date -u +%H:%M) UTC"
    else
        echo "fuzz-long: $t: FAILED (seed $seed)"
        fuzz_failed fuzz-long "$t" "$work/$t" "$log"
        failed+=("$t")
    fi
done
[ "${#failed[@]}" -eq 0 ] || { echo "fuzz-long: FAILED: ${failed[*]}"; exit 1; }
