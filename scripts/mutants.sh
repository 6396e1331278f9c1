#!/usr/bin/env bash
# Planted-bug kill table for the consensus simulator (issue 13, part 2).
#
# For each planted bug (a classic mistake of the Tendermint family, listed in
# scripts/mutants.py) this copies the working tree to a scratch directory, applies
# the bug there (the real tree is never modified), builds, and runs ONLY the
# simulator tests (consensus/tests/simulation.rs) with the CI seed budget (the
# defaults `cargo test --workspace` uses; YRD_SIM_SEEDS is cleared). It prints a
# kill table: mutant, killed or not, by which test, seed and violation, and the time.
#
# The unmutated tree is run first: if it fails, the table would mean nothing.
#
#   scripts/mutants.sh                 # every mutant
#   scripts/mutants.sh a_lock_pol e_old_polka   # some of them
#   MUTANT_DIR=/tmp/m scripts/mutants.sh   # scratch dir (default /tmp/yrd-mutants)
#   MUTANT_TIMEOUT_S=1800              # per-mutant limit on the test run (a hang is reported, not counted as a kill)
#   MUTANT_PROFILE=release             # release (default: the simulator is slow in debug) or debug
#   MUTANT_TESTS="--test simulation"   # which test targets of yrd-consensus count as "the simulator"
#   MUTANT_FILTER=aimed                # only tests whose name contains this (exploration; the table
#                                      # of record runs them all)
#
# The copy is taken from the working tree when each mutant starts: do not patch
# consensus/ by hand while it runs, or the copies mix your patch with the mutant.
#
# The seed counts are those of the debug CI run; release only makes them faster
# (a run is a pure function of its seed, so the same seeds fail in either).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${MUTANT_DIR:-/tmp/yrd-mutants}"
TIMEOUT_S="${MUTANT_TIMEOUT_S:-1800}"
PROFILE="${MUTANT_PROFILE:-release}"
TESTS="${MUTANT_TESTS:---test simulation}"
FILTER="${MUTANT_FILTER:-}"
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)

mkdir -p "$WORK"
# Shared by all mutants (only yrd-consensus rebuilds), and never your own target
# dir: cargo names the artifacts of a workspace member by its path relative to the
# workspace root, so the copy's would overwrite yours (and yours its).
export CARGO_TARGET_DIR="$WORK/target"
export CARGO_INCREMENTAL=0
unset YRD_SIM_SEEDS YRD_SIM_SEED YRD_SIM_SEED_START YRD_SIM_KEEP_GOING YRD_SIM_TRACE YRD_SIM_N

mapfile -t ALL < <(python3 "$ROOT/scripts/mutants.py" list)
if [ $# -gt 0 ]; then SELECTED=("$@"); else SELECTED=(baseline "${ALL[@]}"); fi

TABLE="$WORK/kill-table.txt"
: >"$TABLE"
row() { printf '%-24s %-8s %-40s %-8s %s\n' "$@" | tee -a "$TABLE"; }

# Copies the working tree (uncommitted edits included, no target or .git) to $WORK/tree.
copy_tree() {
    rm -rf "$WORK/tree"
    mkdir -p "$WORK/tree"
    tar -C "$ROOT" --exclude='./target*' --exclude='./.git' -cf - . | tar -C "$WORK/tree" -xf -
}

run_one() {
    local m="$1" log="$WORK/$1.log" start end rc secs first test seed what
    copy_tree
    : >"$log"
    if [ "$m" != baseline ]; then
        if ! python3 "$ROOT/scripts/mutants.py" apply "$m" "$WORK/tree" >>"$log" 2>&1; then
            row "$m" "NOT-APPLIED" "(the code it patches changed: see $log)" "-" "-"
            return
        fi
    fi
    if ! (cd "$WORK/tree" && nice -n 19 cargo test "${PROFILE_FLAG[@]}" -p yrd-consensus $TESTS --no-run) >>"$log" 2>&1; then
        row "$m" "NO-BUILD" "(see $log)" "-" "-"
        return
    fi
    # Run the test binaries themselves (no cargo lock is held while they run), one
    # test at a time, aimed tests first, and stop at the first failure: a mutant is
    # killed by the first test (in that order) that catches it.
    mapfile -t bins < <(sed -nE 's/.*Executable .*\((.*)\)$/\1/p' "$log" | sort -u)
    start=$(date +%s)
    rc=0
    set +e
    for bin in "${bins[@]}"; do
        list=$("$bin" --list 2>/dev/null | sed -nE 's/^(.*): test$/\1/p' | grep -- "$FILTER" || true)
        tests=($(grep aimed <<<"$list" || true) $(grep -v aimed <<<"$list" || true))
        for t in "${tests[@]}"; do
            (cd "$WORK/tree/consensus" && timeout "$TIMEOUT_S" nice -n 19 "$bin" --exact "$t" --test-threads=1) >>"$log" 2>&1
            r=$?
            [ $r -ne 0 ] && { rc=$r; break 2; }
        done
    done
    set -e
    end=$(date +%s)
    secs=$((end - start))
    if [ $rc -eq 124 ]; then
        row "$m" "TIMEOUT" "(no verdict in ${TIMEOUT_S}s)" "-" "${secs}s"
        return
    fi
    if [ $rc -eq 0 ]; then
        if [ "$m" = baseline ]; then row "$m" "clean" "(all simulator tests pass)" "-" "${secs}s"; else row "$m" "SURVIVED" "-" "-" "${secs}s"; fi
        return
    fi
    # "<test>: seed <seed> violated an invariant: <Violation> ..." (first failure in the log)
    first=$(grep -m1 -E ': seed [0-9]+ violated an invariant: ' "$log" || true)
    if [ -n "$first" ]; then
        test="${first%%:*}"
        seed=$(sed -E 's/.*: seed ([0-9]+) violated.*/\1/' <<<"$first")
        what=$(sed -E 's/.*violated an invariant: ([A-Za-z]+).*/\1/' <<<"$first")
        row "$m" "$([ "$m" = baseline ] && echo BROKEN || echo killed)" "$test" "$seed" "${secs}s $what"
    else
        # A failure that is not a seeded violation (a panic in the core, an assert).
        what=$(grep -m1 -E "panicked at|^test .* FAILED" "$log" | cut -c1-80 || true)
        row "$m" "$([ "$m" = baseline ] && echo BROKEN || echo killed)" "(no seeded violation: $what)" "-" "${secs}s"
    fi
}

printf '%-24s %-8s %-40s %-8s %s\n' mutant verdict "test" seed "time violation" | tee -a "$TABLE"
for m in "${SELECTED[@]}"; do
    run_one "$m"
done
echo "kill table: $TABLE (logs: $WORK/<mutant>.log)"
rm -rf "$WORK/tree"
