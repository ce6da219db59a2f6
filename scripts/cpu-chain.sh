#!/usr/bin/env bash
# The `cpu` chain end to end, sized for a CPU WebGPU adapter (lavapipe): PA-MAE, 3-D VAE and flow on phantom
# data, then cines for held-out phantom ECGs and their evaluation against the phantom ground truth, with a
# ceiling and two baselines measured by the same ruler:
#   reconstruction the VAE's round trip of each ground truth (what a perfect flow could reach);
#   unconditional  the same DiT with the ECG replaced by the null condition (zero tokens);
#   other-subject  every ground truth paired with the next subject's ground truth (anatomy ignored entirely).
# Usage: bash scripts/cpu-chain.sh [RUN_DIR] [SUBJECTS]   (default runs/cpu-chain, 32 held-out subjects)
# Stages already completed in RUN_DIR are kept (a stage directory with summary.json is skipped); an interrupted
# stage resumes from its last checkpoint (exactly: same losses as an uninterrupted run).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/cpu-chain}
subjects=${2:-32}
# Far beyond every stage's training and validation subjects of the default seed.
first=200000
last=$((first + subjects - 1))
mkdir -p "$run"

stage() { # name, extra args...
  local name=$1
  shift
  if [[ -f "$run/$name/summary.json" ]]; then
    echo "== $name: done already ($run/$name)"
    return
  fi
  if [[ -f "$run/$name/checkpoints/last.safetensors" ]]; then
    echo "== $name: resuming $run/$name"
    npx tsx src/cli/train.ts --resume "$run/$name" --log-every 16
    return
  fi
  rm -rf "${run:?}/$name"
  echo "== $name"
  npx tsx src/cli/train.ts --stage "$name" --config cpu --out "$run/$name" --log-every 16 "$@"
}

stage ecg
stage vae
stage flow --vae-run "$run/vae" --ecg-run "$run/ecg"

generate() { # out dir, extra args...
  local out=$1
  shift
  if [[ ! -f "$out/ground-truth/meta.json" ]]; then
    rm -rf "$out"
    npx tsx src/cli/generate.ts --checkpoint "$run/flow" --out "$out" --phantom-index "$first-$last" --phantom-gt "$@" > "$out.log"
  fi
}
echo "== generate ($subjects held-out subjects: conditional, unconditional, VAE reconstruction)"
generate "$run/generated"
generate "$run/unconditional" --unconditional
generate "$run/reconstruction" --reconstruct

# Baseline: each ground truth scored against the next subject's ground truth (ids kept, clips rotated).
other="$run/other-subject"
rm -rf "$other"
mkdir -p "$other"
gts=("$run/generated/ground-truth/"*.npy)
for i in "${!gts[@]}"; do
  next=$(((i + 1) % ${#gts[@]}))
  cp "${gts[$next]}" "$other/$(basename "${gts[$i]}")"
done

gt="$run/generated/ground-truth"
for name in generated reconstruction unconditional other-subject; do
  echo "== evaluate $name"
  npx tsx src/cli/evaluate.ts --pred "$run/$name" --gt "$gt" --phantom-meta "$gt/meta.json" --out "$run/evaluation-$name.json" --rows 0
done
