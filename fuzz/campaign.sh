#!/usr/bin/env bash
# A fuzzing campaign over authdb's `ops` and `faults` targets, one target at a time at the
# lowest CPU priority, and a report in fuzz/CAMPAIGN.md: executions, exec/s, coverage (`cov:`
# edges, `ft:` features), corpus size and the crashes found.
#
#   fuzz/campaign.sh SECONDS [RUNS]
#
# Each target runs until SECONDS of wall time have passed or RUNS inputs have been executed
# (RUNS 0 or absent: no limit). A crash does not end the campaign: the input is saved under
# fuzz/artifacts/<target>/, listed in the report, and the target starts again (on the corpus
# built so far) for the time that is left. The corpus (fuzz/corpus/<target>/) grows across
# campaigns. Logs: fuzz/target/campaign/<target>-<n>.log.
#
# Environment: CAMPAIGN_TARGETS (default "ops faults"); CAMPAIGN_ARGS, extra libFuzzer flags
# (default "-entropic=0": libFuzzer's entropic schedule costs more per execution than it gives
# on these targets, whose every input walks the whole store). Same build as fuzz/smoke.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/campaign.sh SECONDS [RUNS]}
runs=${2:-0}
targets=${CAMPAIGN_TARGETS:-ops faults}
read -r -a extra <<<"${CAMPAIGN_ARGS:--entropic=0}"
logs=fuzz/target/campaign
report=fuzz/CAMPAIGN.md
mkdir -p "$logs"

# Install nightly only when missing: updating it under a running build breaks that build.
rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
build=(-s none --debug-assertions --target-dir fuzz/target/fast)

rows=()
crash_lines=()
for target in $targets; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    nice -n 19 cargo +nightly fuzz build "${build[@]}" "$target"
    started=$(date +%s)
    execs=0 attempt=0 cov=- ft=- corp=- crashes=0
    while :; do
        left=$((seconds - ($(date +%s) - started)))
        [ "$left" -gt 0 ] || break
        if [ "$runs" -gt 0 ]; then
            [ "$execs" -lt "$runs" ] || break
            limit=(-runs=$((runs - execs)))
        else
            limit=()
        fi
        attempt=$((attempt + 1))
        log="$logs/$target-$attempt.log"
        before=$(ls "fuzz/artifacts/$target" | wc -l)
        set +e
        nice -n 19 cargo +nightly fuzz run "${build[@]}" "$target" \
            "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
            -max_total_time="$left" "${limit[@]}" -max_len=1024 -timeout=60 \
            -dict=fuzz/ops.dict -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
        status=$?
        set -e
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        if [ -z "$n" ]; then
            # A crash ends the run without the final stats: count the last progress line.
            n=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        fi
        execs=$((execs + ${n:-0}))
        last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
        if [ -n "$last" ]; then
            cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$last")
            ft=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$last")
            corp=$(sed -E 's/.*corp: ([0-9]+).*/\1/' <<<"$last")
        fi
        after=$(ls "fuzz/artifacts/$target" | wc -l)
        if [ "$status" -ne 0 ]; then
            crashes=$((crashes + 1))
            for f in $(ls -t "fuzz/artifacts/$target" | head -n $((after - before > 0 ? after - before : 1))); do
                msg=$(grep -m1 -E "panicked at|ERROR: libFuzzer" "$log" || echo "exit $status")
                crash_lines+=("| $target | \`fuzz/artifacts/$target/$f\` | ${msg//|/\\|} |")
            done
        elif [ "$runs" -eq 0 ] || [ "$execs" -ge "$runs" ]; then
            break
        fi
    done
    elapsed=$(($(date +%s) - started))
    rate=$((elapsed > 0 ? execs / elapsed : 0))
    rows+=("| $target | $execs | $elapsed | $rate | $cov | $ft | $corp | $crashes |")
    echo "== $target: $execs executions in $elapsed s ($rate/s), cov $cov, ft $ft, $crashes crash(es)"
done

total=0
for r in "${rows[@]}"; do
    total=$((total + $(cut -d'|' -f3 <<<"$r")))
done
{
    echo "# Fuzzing campaign"
    echo
    echo "Written by \`fuzz/campaign.sh $seconds $runs\` on $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "($(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, nice 19, build:"
    echo "\`cargo +nightly fuzz run ${build[*]}\`, libFuzzer flags \`-max_len=1024 ${extra[*]}\`)."
    echo
    echo "| target | executions | seconds | exec/s | cov | ft | corpus | crashes |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Total executions: $total."
    echo
    echo "## Crashes"
    echo
    if [ "${#crash_lines[@]}" -eq 0 ]; then
        echo "None."
    else
        echo "| target | input | first message |"
        echo "|---|---|---|"
        printf '%s\n' "${crash_lines[@]}"
    fi
} >"$report"
echo "== report: $report"
