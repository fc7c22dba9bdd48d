#!/usr/bin/env bash
# Runs fuzz targets built by `make fuzz-build` (build/fuzz/glm-fuzz-<target>), each for SECONDS.
#
#   Fuzz/run.sh [--ci] SECONDS TARGET...
#
# Default (`make fuzz`): libFuzzer's fork mode, so a slow input (timeout) or a memory blow-up (oom) is recorded
# and fuzzing goes on; a crash, a sanitizer report, a broken invariant or a leak ends that target. New inputs
# go to build/fuzz/corpus/<target> (kept between runs, never committed; Fuzz/corpus/<target> holds the seeds).
# --ci (`make test`): a fixed libFuzzer seed, a fixed number of inputs (FUZZ_CI_RUNS, default 12000; SECONDS caps
# the time) and a throw-away corpus directory; the first finding ends the target.
# Any finding fails the run.
# Findings land in build/fuzz/findings/<target>/; the log of each target in build/fuzz/logs/<target>.log.
# Knobs: FUZZ_TIMEOUT (seconds one input may take, default 10), FUZZ_RSS_MB (default 2048).
set -uo pipefail
cd "$(dirname "$0")/.."

ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; fi
seconds=${1:?usage: Fuzz/run.sh [--ci] SECONDS TARGET...}
shift
timeout_s=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
out=build/fuzz
failed=()

for target in "$@"; do
    binary=$out/glm-fuzz-$target
    [ -x "$binary" ] || { echo "fuzz: $binary is missing (make fuzz-build)"; exit 2; }
    findings=$out/findings/$target
    log=$out/logs/$target.log
    mkdir -p "$findings" "$out/logs"
    flags=(-max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" -print_final_stats=1
           -artifact_prefix="$findings/")
    if [ $ci -eq 1 ]; then
        corpus=$(mktemp -d)
        # A fixed seed and a fixed number of inputs (SECONDS only caps the time): the same inputs on every CI
        # run, so CI's verdict does not depend on how fast the machine happens to be.
        flags+=(-seed=1 -runs="${FUZZ_CI_RUNS:-12000}")
    else
        corpus=$out/corpus/$target
        mkdir -p "$corpus"
        flags+=(-fork=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    before=$(ls "$findings" | wc -l)
    start=$SECONDS
    "$binary" "${flags[@]}" "$corpus" "Fuzz/corpus/$target" >"$log" 2>&1
    status=$?
    [ $ci -eq 1 ] && rm -rf "$corpus"
    new=$(ls -t "$findings" | head -n $(( $(ls "$findings" | wc -l) - before )))
    # Inputs run: the final stats (plain mode) or the last progress line (fork mode, "#N: cov: ...").
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*: cov' "$log" | tail -1 | tr -dc '0-9')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz $target: ${runs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov: ?}, exit $status"
    for f in $new; do echo "  finding: $findings/$f (reproduce: $binary $findings/$f)"; done
    if [ $status -ne 0 ] || [ -n "$new" ]; then
        failed+=("$target")
        grep -E 'ERROR|SUMMARY|invariant broken|Fatal error|panic|==[0-9]+==|#[0-9]+ 0x' "$log" | head -40 | sed 's/^/  | /'
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (logs in $out/logs)"
    exit 1
fi
