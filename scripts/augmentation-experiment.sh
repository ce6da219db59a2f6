#!/usr/bin/env bash
# The generative-augmentation experiment on the phantom (docs/DOWNSTREAM.md), sized for a CPU adapter:
#   1. the `cpu` chain (scripts/cpu-chain.sh; kept when RUN_DIR/flow/summary.json exists);
#   2. a labelled real cohort of a seed the chain never saw: 128 subjects for pretraining/fine-tuning (k folds)
#      and 256 held out as the test set;
#   3. an ECG-only pool (phantom ECGs of a third seed) turned into cines by the chain, once conditioned on the
#      ECG and once with the null ECG (--unconditional), as many as the largest mix needs (4 x 128);
#   4. the downstream experiment: classification of the phantom class and regression of the EF/EDV/ESV proxies,
#      arms none / real / synthetic / unconditional, mix 0-4, 5 folds x 3 seeds.
# Every step resumes: rerun the script after an interruption. The two tasks share their pretrained encoders
# (RUN_DIR/pretrained; the same settings and clips, checked on reuse).
# Usage: bash scripts/augmentation-experiment.sh [RUN_DIR]   (default runs/augmentation)
# A reduced protocol for a short session (environment): MIXES (default 0,1,2,3,4), SEEDS (default 3),
# FOLDS (default 5), TASKS (default "classify regress"); the synthetic pools hold max(MIXES) x 128 clips.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/augmentation}
chain=${CHAIN:-$run/chain}
mkdir -p "$run"

if [[ ! -f "$chain/flow/summary.json" ]]; then
  echo "== cpu chain in $chain"
  bash scripts/cpu-chain.sh "$chain" 8
fi

if [[ ! -f "$run/real/manifest.json" ]]; then
  echo "== labelled real cohort (384 phantom subjects of seed 1001: 128 train, 256 test)"
  rm -rf "$run/real"
  npx tsx src/cli/data.ts synth --n 384 --seed 1001 --split 1,0,2 --out "$run/real"
fi

mixes=${MIXES:-0,1,2,3,4}
seeds=${SEEDS:-3}
folds=${FOLDS:-5}
tasks=${TASKS:-classify regress}
max_mix=$(tr ',' '\n' <<< "$mixes" | sort -n | tail -1)
pool=$((max_mix * 128))
for kind in synthetic unconditional; do
  out="$run/$kind"
  [[ $pool -eq 0 || -f "$out/manifest.json" ]] && continue
  extra=()
  [[ $kind == unconditional ]] && extra=(--unconditional)
  resume=()
  [[ -f "$out/build-journal.jsonl" ]] && resume=(--resume)
  echo "== $kind pool: $pool clips from phantom ECGs of seed 2002"
  npx tsx src/cli/synthesize.ts --checkpoint "$chain/flow" --out "$out" --phantom "$pool" --phantom-seed 2002 --batch 8 "${extra[@]}" "${resume[@]}"
done

synthetic=()
[[ $pool -gt 0 ]] && synthetic=(--synthetic "$run/synthetic" --unconditional "$run/unconditional")
common=(--real "$run/real" "${synthetic[@]}" --mix "$mixes" --folds "$folds" --seeds "$seeds" --pretrained-cache "$run/pretrained")
for task in $tasks; do
  case $task in
    classify)
      echo "== downstream: classification of the phantom class"
      npx tsx src/cli/downstream.ts --task classify --label cls "${common[@]}" --out "$run/classify" ;;
    regress)
      echo "== downstream: regression of the EF, EDV and ESV proxies"
      npx tsx src/cli/downstream.ts --task regress --targets efProxy,edvProxy,esvProxy "${common[@]}" --out "$run/regress" ;;
    *) echo "unknown task '$task' in TASKS (classify, regress)" >&2; exit 2 ;;
  esac
  echo "== results: $run/$task/results.md"
done
