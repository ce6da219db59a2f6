#!/usr/bin/env bash
# `npm run bench -- --quick` on Dawn (Node) and then on wgpu (Deno), on the same adapter in one go, and the two
# side by side: bench/results/<adapter>-quick-{dawn,wgpu}-<date>.json and a markdown table on stdout.
# Extra arguments go to both runs (e.g. --suite core,matmul).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} DENO_NO_UPDATE_CHECK=1
bash scripts/ensure-webgpu.sh
day=$(date -u +%F)
prefix=${BENCH_PREFIX:-bench/results/lavapipe-quick}
npx tsx bench/run.ts --quick --out "$prefix-dawn-$day.json" "$@"
npx deno run -A --sloppy-imports bench/run.ts --quick --out "$prefix-wgpu-$day.json" "$@"
npx tsx scripts/bench-compare.ts "$prefix-dawn-$day.json" "$prefix-wgpu-$day.json"
