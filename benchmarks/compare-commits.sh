#!/usr/bin/env bash
# Runs benchmarks of two commits back to back, alternating, so a change is compared with what it replaced under the same
# machine conditions: compare-commits.sh BASE [HEAD] [benchmark...] (default: records snapshot). BASE and HEAD are built in
# Release in temporary git worktrees; each benchmark's summary lines are printed under "=== NAME COMMIT (load L)".
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${1:?usage: compare-commits.sh BASE [HEAD] [benchmark...]}"
head="${2:-HEAD}"
shift $(( $# >= 2 ? 2 : 1 ))
benchmarks=("$@")
((${#benchmarks[@]} > 0)) || benchmarks=(records snapshot)

work="$(mktemp -d /tmp/orthancseg-compare-XXXXXX)"
cleanup() {
    for tree in "$work"/*/; do git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for commit in "$base" "$head"; do
    tree="$work/$(git -C "$repo" rev-parse --short "$commit")"
    git -C "$repo" worktree add -q --detach "$tree" "$commit"
    dotnet build "$tree/OrthancSeg.sln" -c Release --nologo -v q >/dev/null
    (cd "$tree" && plugin-bridge/generate.sh >/dev/null)
done

for benchmark in "${benchmarks[@]}"; do
    for commit in "$base" "$head"; do
        short="$(git -C "$repo" rev-parse --short "$commit")"
        echo "=== $benchmark $short (load $(cut -d' ' -f1 /proc/loadavg))"
        (cd "$work/$short" && dotnet run -c Release --no-build --project benchmarks/OrthancSeg.Benchmarks -- "$benchmark")
    done
done
