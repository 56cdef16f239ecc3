#!/usr/bin/env bash
# The reader's cost with many Slurm jobs in the lab: how many scheduler
# calls one `labmate runs` makes, and its wall time, while 200 jobs wait
# in Slurm's queue, and once they have ended.
#
#   bash crates/labmate-cli/benches/slurm_reader.sh [N_JOBS] [REPEATS]
#
# Needs a Slurm cluster that takes jobs (../shared/slurm/start-local-slurm.sh
# starts one on this machine). Builds the release binary. The jobs are
# submitted held (--hold), so that they wait whatever the cluster's size,
# and cancelled at the end.
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-200}
REPEATS=${2:-15}
cargo build --release --quiet -p labmate-cli
BIN=$PWD/target/release/labmate
WORK=$(mktemp -d)
trap 'scancel --name=labmate-bench-reader >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# Every Slurm command labmate runs goes through a wrapper that counts it.
mkdir -p "$WORK/bin" "$WORK/lab"
for cmd in squeue sbatch scancel scontrol sinfo sacct; do
    real=$(command -v "$cmd" || true)
    [ -n "$real" ] || continue
    printf '#!/bin/sh\necho %s >> "%s/calls"\nexec %s "$@"\n' "$cmd" "$WORK" "$real" > "$WORK/bin/$cmd"
    chmod +x "$WORK/bin/$cmd"
done
export PATH="$WORK/bin:$PATH"
cd "$WORK/lab"

echo "submitting $N held jobs..."
for i in $(seq "$N"); do
    "$BIN" run --slurm --name labmate-bench-reader --sbatch-arg=--hold -- sleep 1 >/dev/null 2>&1
done
"$BIN" runs >/dev/null # the first reader of the new runs

measure() { # label
    : > "$WORK/calls"
    local times=()
    for _ in $(seq "$REPEATS"); do
        local t0 t1
        t0=$(date +%s%N)
        "$BIN" runs --json >/dev/null
        t1=$(date +%s%N)
        times+=($(( (t1 - t0) / 1000 )))
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    local calls
    calls=$(wc -l < "$WORK/calls")
    local by
    by=$(sort "$WORK/calls" | uniq -c | awk '{printf "%s %s, ", $1, $2}')
    printf '%-40s runs --json: median %6.1f ms; scheduler calls per runs: %s (%s)\n' \
        "$1" "$(echo "$median / 1000" | bc -l)" "$(echo "scale=2; $calls / $REPEATS" | bc -l)" "${by%, }"
}

measure "$N jobs queued (PENDING, held)"
echo "cancelling them..."
scancel --name=labmate-bench-reader
sleep 2
"$BIN" runs >/dev/null # the reader that finds them ended
measure "$N jobs ended (cancelled outside labmate)"
"$BIN" runs --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("statuses:", sorted({x["status"] for x in r}), "of", len(r), "runs")'
