#!/usr/bin/env bash
# Smoke run of authdb's fuzz targets, for CI: installs nightly and cargo-fuzz if missing, then
# runs `ops` for 60 s and `decode` and `faults` for 20 s each, from the committed seeds
# (fuzz/seeds/) plus whatever fuzz/corpus/ already holds. Any crash, leak, timeout or
# out-of-memory fails the script (libFuzzer exits non-zero; the crashing input is saved under
# fuzz/artifacts/<target>/). For a long campaign see fuzz/README.md.
#
# Environment: FUZZ_SMOKE_SCALE=N multiplies every duration (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup toolchain install nightly --profile minimal
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

scale=${FUZZ_SMOKE_SCALE:-1}

# `ops` and `faults` run authdb's safe code and the model: without a sanitizer they run about
# ten times faster, and debug assertions (with overflow checks) stay on. `decode` keeps
# AddressSanitizer so that -malloc_limit_mb catches an oversized allocation. Separate target
# directories keep the two builds from invalidating each other.
run() {
    local target=$1 seconds=$2
    shift 2
    mkdir -p "fuzz/corpus/$target"
    echo "== fuzz $target for $((seconds * scale)) s"
    set +e
    cargo +nightly fuzz run "$@" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time=$((seconds * scale)) -print_final_stats=1 "${FUZZ_ARGS[@]}" 2>&1 |
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)'
    # libFuzzer's exit status counts, not grep's (its progress lines are hidden).
    local status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $target failed (exit $status); the input is under fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
}

FUZZ_ARGS=(-max_len=1024 -timeout=60 -dict=fuzz/ops.dict)
run ops 60 -s none --debug-assertions --target-dir fuzz/target/fast
run faults 20 -s none --debug-assertions --target-dir fuzz/target/fast
FUZZ_ARGS=(-timeout=10 -malloc_limit_mb=64)
run decode 20

echo "== fuzz smoke: no crash"
