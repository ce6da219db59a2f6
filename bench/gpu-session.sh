#!/usr/bin/env bash
# One GPU session: everything the project wants measured on a lent GPU, in about 8 minutes, as one script.
#
# Prepare here (the device has no network): pack Node + the Dawn addon + the Vulkan loader into .gpu/ (the
# team's GPU packing script; .gpu/run.sh launches through it), then npm run build
# Run on the device (carry .gpu and dist):     bash bench/gpu-session.sh
# Rehearse here on lavapipe (tiny shapes):     npm run build && GPU_SESSION_SMOKE=1 bash bench/gpu-session.sh
#
# Every step is its own Node process under `timeout`, so a hang or a crash loses that step only; results
# are appended to $OUT/results.jsonl (one JSON line per step, bench/run.ts format) as each step ends.
# Files in $OUT: session.log (everything printed), caps.json, results.jsonl, steps.jsonl (rc and seconds
# per step). Steps that no longer fit GPU_SESSION_BUDGET seconds (default 480) are skipped, in this order
# of priority: caps, tensor-core matmul, conv3d, attention, VAE, training steps (small, then paper).
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=${GPU_SESSION_SMOKE:-0}
if [ "$SMOKE" != 1 ] && [ -z "${GPU_SESSION_INNER:-}" ] && [ -f .gpu/run.sh ]; then
  # Unpack Node, Dawn and the Vulkan loader once and select the NVIDIA driver, then run the rest under it.
  GPU_SESSION_INNER=1 exec bash .gpu/run.sh bash "$0" "$@"
fi

OUT=${OUT:-$(mktemp -d /tmp/gpu-session.XXXXXX)}
mkdir -p "$OUT"
LOG=$OUT/session.log
RESULTS=$OUT/results.jsonl
BUDGET=${GPU_SESSION_BUDGET:-480}
START=$(date +%s)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

say() { echo "$*" | tee -a "$LOG"; }
[ -f dist/bench.js ] || { say "dist/bench.js is missing: run npm run build before the session"; exit 2; }
EXTRA=()
[ "$SMOKE" = 1 ] && EXTRA=(--smoke)

say "# GPU session $(date -u +%FT%TZ) smoke=$SMOKE budget=${BUDGET}s out=$OUT node=$(node --version)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"

# step NAME LIMIT_SECONDS ARGS...: one bench/run.ts process, skipped when the budget cannot hold it.
step() {
  local name=$1 limit=$2
  shift 2
  local now elapsed left t0 rc
  now=$(date +%s)
  elapsed=$((now - START))
  left=$((BUDGET - elapsed))
  if [ "$left" -lt 20 ]; then
    say "=== $name: skipped (${elapsed}s of ${BUDGET}s used)"
    echo "{\"step\":\"$name\",\"skipped\":true,\"at\":$elapsed}" >>"$OUT/steps.jsonl"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "=== $name (limit ${limit}s, at +${elapsed}s)"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" node dist/bench.js "$@" "${EXTRA[@]}" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  say "=== $name: rc=$rc$([ "$rc" = 124 ] && echo ' (timed out)') in $(($(date +%s) - t0))s"
  echo "{\"step\":\"$name\",\"rc\":$rc,\"seconds\":$(($(date +%s) - t0)),\"at\":$elapsed}" >>"$OUT/steps.jsonl"
}

MATMUL=(--suite gpu-matmul)
[ "$SMOKE" = 1 ] && MATMUL+=(--emulate-subgroup-matrix)
if [ "$SMOKE" = 1 ]; then TRAIN_CASES=(ecg:tiny vae:tiny flow:tiny); else TRAIN_CASES=(ecg:small vae:small flow:small ecg:paper vae:paper flow:paper); fi

step caps 40 --caps --out "$OUT/caps.json"
step matmul 150 "${MATMUL[@]}" --out "$RESULTS"
step conv3d 60 --suite gpu-conv --out "$RESULTS"
step attention 90 --suite gpu-attention --out "$RESULTS"
step vae 90 --suite gpu-vae --out "$RESULTS"
for c in "${TRAIN_CASES[@]}"; do
  limit=60
  case $c in vae:paper) limit=100 ;; esac
  step "train-$c" "$limit" --suite gpu-train --cases "$c" --out "$RESULTS"
done

say "=== summary ($(($(date +%s) - START))s)"
node -e '
const fs = require("fs");
const lines = fs.existsSync(process.argv[1]) ? fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean) : [];
for (const line of lines) {
  for (const r of JSON.parse(line).rows) {
    const tf = r.gflops ? `${(r.gflops / 1000).toFixed(2)} TFLOP/s` : "";
    const info = r.info ? JSON.stringify(r.info).slice(0, 160) : "";
    console.log(`${r.suite.padEnd(13)} ${r.name.padEnd(50)} ${String(r.shape).padEnd(28)} ${r.ms ? r.ms.toFixed(3).padStart(10) + " ms" : "".padStart(13)} ${tf.padStart(15)} ${info}`);
  }
}' "$RESULTS" 2>&1 | tee -a "$LOG"
say "# files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
