#!/usr/bin/env bash
# Train the real-word S-Edge runs side by side on one CUDA machine until a deadline.
#
#   DEADLINE=480 bash tools/gpu_train.sh                       (from the repository root)
#   RUNS="mini_l:l:40 mini_full:full:40" DEADLINE=480 bash tools/gpu_train.sh   (the second lease's l and full)
#   DATA='synthetic:n_speakers=500,repeats=2,words=yes+no+up+down+left+right+on+off+stop+go,snr_db=10' \
#     RUNS="synthetic_s:s:20 synthetic_m:m:20" bash tools/gpu_train.sh      (synthetic v2, checkpoints/synthetic_v2)
#
# RUNS lists NAME:MODEL:EPOCHS[:EXTRA]; each is `sedge train --model MODEL --data DATA --epochs EPOCHS --lr 0.005
# --device cuda --out runs/gpu/NAME EXTRA` (EXTRA: further options without spaces, commas between them,
# e.g. `--augment=default`), the recipe of checkpoints/trained/README.md (batch 16, seed 1234,
# RZOH on, no augmentation). A run whose folder is in .gpu/resume/NAME (copied there from
# checkpoints/) resumes from its last.pt: the device is not part of a run's configuration, so the
# same command continues it on the CPU afterwards. Every run writes last.pt every half minute and is
# stopped at DEADLINE seconds after the start; a tarball of runs/gpu lands in $OUT.
#
# At batch 16 one GPU step is bound by kernel launches (tests/benchmarks/gpu_check.py), so four runs
# share one GPU at little cost. The script needs the real 8-word excerpt at
# ../shared/data/speech_commands_mini; it gathers the word folders from MINI_PARTS (folders of word
# folders), for a machine that received the clips in pieces, and installs wheels found in .whl/
# (soundfile and its dependencies, where the machine lacks them). DATA (default mini) is the data
# spec of every run; a synthetic spec is generated on the machine (17 s for synthetic v2), which
# needs the espeakng-loader wheel in .whl/ instead of the clips.
set -u
T0=$(date +%s)
DEADLINE=${DEADLINE:-480}
OUT=${OUT:-/tmp/gpu_out}
RUNS=${RUNS:-"mini_l_epochs60:l:60 mini_m_augment_epochs60:m:60:--augment=default"}   # the next runs to try (checkpoints/trained/README.md)
MINI_PARTS=${MINI_PARTS:-"/root/mini_stash .gpu/mini_a .gpu/mini_b"}
DATA=${DATA:-mini}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 SEDGE_CACHE=${SEDGE_CACHE:-/tmp/sedge_cache}
export PYTHONPATH=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi

if [ "$DATA" = mini ]; then
  MINI=../shared/data/speech_commands_mini
  mkdir -p "$MINI"
  for part in $MINI_PARTS; do
    [ -d "$part" ] || continue
    for d in "$part"/*; do [ -e "$MINI/$(basename "$d")" ] || mv "$d" "$MINI/"; done
  done
  n=$(find "$MINI" -name '*.flac' | wc -l)
  echo "real 8-word clips here: $n"
  [ "$n" -eq 7192 ] || { echo "expected 7192 clips in $MINI"; exit 2; }
fi
DATA="$DATA" python3 -c "import os; from sedge.data import load_data; d = load_data(os.environ['DATA']); print('data', d.summary())" || exit 3

mkdir -p runs/gpu "$OUT"
for spec in $RUNS; do
  IFS=: read -r name model epochs extra <<< "$spec"
  if [ -d ".gpu/resume/$name" ] && [ ! -e "runs/gpu/$name" ]; then cp -r ".gpu/resume/$name" runs/gpu/; fi
  left=$((DEADLINE - ($(date +%s) - T0)))
  echo "$name: sedge train --model $model --epochs $epochs ${extra//,/ } ($([ -e "runs/gpu/$name/last.pt" ] && echo resumes || echo new))"
  timeout -s TERM "$left" python3 -m sedge.cli train --model "$model" --data "$DATA" --epochs "$epochs" --lr 0.005 \
    --device cuda --checkpoint-minutes 0.5 --out "runs/gpu/$name" ${extra//,/ } >> "runs/gpu/$name.log" 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 30
  echo "--- $(( $(date +%s) - T0 )) s"
  for f in runs/gpu/*.log; do printf '%s: %s\n' "$f" "$(tr '\r' '\n' < "$f" | grep -a 'epoch [0-9]*:' | tail -1)"; done
done
wait
for f in runs/gpu/*.log; do echo "== $f"; tr '\r' '\n' < "$f" | grep -a 'epoch [0-9]*:\|Error' | tail -5; done
tar czf "$OUT/gpu_runs.tar.gz" runs/gpu
cat runs/gpu/*/summary.json 2>/dev/null
echo "done in $(( $(date +%s) - T0 )) s"
