#!/usr/bin/env bash
# CI for the Node binding (bindings/node, @authdb/authjs-adapter): from a fresh clone, `npm ci`,
# build the native addon (cargo, release), lint the binding crate, run the vitest suite; prints
# how long each stage took. Needs Node.js >= 18.17 with npm, and the Rust toolchain.
#
#   bash .ci/node.sh
#
# .ci/run does not call it; to make it part of CI add the line `bash .ci/node.sh` to .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../bindings/node"

timings=()
summary=""
finish() {
    echo "== timings"
    printf '%s\n' "${timings[@]}"
    if [ -n "$summary" ]; then echo "$summary"; fi
}
stage() {
    local name=$1
    shift
    echo "== $name"
    local t0 rc=0
    t0=$(date +%s%N)
    "$@" || rc=$?
    local ms=$((($(date +%s%N) - t0) / 1000000))
    timings+=("$(printf '%-34s %6d.%01d s' "$name" $((ms / 1000)) $((ms % 1000 / 100)))")
    echo "== $name: took $((ms / 1000)).$((ms % 1000 / 100)) s"
    if [ "$rc" -ne 0 ]; then
        echo "== $name FAILED (exit $rc)" >&2
        finish
        exit "$rc"
    fi
}

stage "toolchain" bash -c 'echo "node $(node --version), npm $(npm --version), $(cargo --version)"
    node -e "const [a, b] = process.versions.node.split(\".\").map(Number);
             if (a < 18 || (a === 18 && b < 17)) { console.error(\"Node.js >= 18.17 needed\"); process.exit(1) }"'
stage "npm ci" npm ci --no-audit --no-fund
stage "build the addon (cargo --release)" npm run build
stage "clippy on the binding crate" \
    cargo clippy --manifest-path Cargo.toml -p authdb-node --release -- -D warnings

# vitest prints its own summary; the JSON report gives the plain closing line CI reads.
report=$(mktemp)
trap 'rm -f "$report"' EXIT
run_tests() {
    local rc=0
    npx vitest run --reporter=default --reporter=json --outputFile="$report" || rc=$?
    summary=$(node -e '
        const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
        console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
    ' "$report" 2>/dev/null || echo "vitest: no report (exit $rc)")
    return "$rc"
}
stage "npm test (vitest)" run_tests
finish
