# Shared by scripts/fuzz-smoke.sh and scripts/fuzz-long.sh (sourced, not run; from
# the repository root).
#
# fuzz_failed NAME TARGET DIR LOG: prints why TARGET failed (the panic or
# sanitizer lines of LOG), copies every input libFuzzer kept in DIR/crash/ to
# fuzz/artifacts/TARGET/ and prints the command that reproduces it.
fuzz_failed() {
    local name=$1 t=$2 dir=$3 log=$4 c
    grep -E 'panicked at|ERROR: |SUMMARY' "$log" | head -5 || true
    for c in "$dir"/crash/*; do
        [ -e "$c" ] || continue
        mkdir -p fuzz/artifacts/"$t"
        cp "$c" fuzz/artifacts/"$t"/
        echo "$name: $t: input kept in fuzz/artifacts/$t/$(basename "$c")"
        echo "  reproduce: (cd fuzz && cargo +nightly fuzz run $t artifacts/$t/$(basename "$c"))"
    done
}
