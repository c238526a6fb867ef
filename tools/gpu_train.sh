#!/usr/bin/env bash
# Train the real-word S-Edge runs on a lent CUDA machine within a fixed time, all at once on one GPU.
#
#   DEADLINE=480 bash tools/gpu_train.sh          (on the GPU machine, from the repository root)
#
# Each run is an ordinary `sedge train --device cuda` with the recipe of the CPU runs (lr 0.005,
# batch 16, seed 1234, RZOH on, no augmentation), writing last.pt every half minute, so a run stopped
# at the deadline resumes with the same command on any machine (the device is not part of a run's
# configuration). The number of epochs of a new run is what its measured step time lets it finish
# before the deadline (at most 60, the schedule that gained on tiny; at least 40, the paper's):
# tests/benchmarks/gpu_check.py, run earlier on the same machine, wrote that time to $BENCH.
# Needs the 8-word excerpt at ../shared/data/speech_commands_mini (the script gathers the word
# folders from $MINI_PARTS, which the device tool carried in pieces) and soundfile (wheels in .whl/).
# Leaves runs/gpu/<run>/ and a tarball of them in $OUT.
set -u
T0=$(date +%s)
DEADLINE=${DEADLINE:-480}
OUT=${OUT:-/tmp/gpu_out}
BENCH=${BENCH:-/root/gpu_check.json}
MINI_PARTS=${MINI_PARTS:-"/root/mini_stash .gpu/mini_a .gpu/mini_b"}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 SEDGE_CACHE=/tmp/sedge_cache
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi

MINI=../shared/data/speech_commands_mini
mkdir -p "$MINI"
for part in $MINI_PARTS; do
  [ -d "$part" ] || continue
  for d in "$part"/*; do [ -e "$MINI/$(basename "$d")" ] || mv "$d" "$MINI/"; done
done
n=$(find "$MINI" -name '*.flac' | wc -l)
echo "real 8-word clips here: $n"
[ "$n" -eq 7192 ] || { echo "expected 7192 clips in $MINI"; exit 2; }
python3 -c "from sedge.data import load_data; d = load_data('mini'); print('decoded', d.name, d.classes)" || exit 3

mkdir -p runs/gpu "$OUT"
for d in .gpu/resume/*; do [ -e "$d" ] && [ ! -e "runs/gpu/$(basename "$d")" ] && cp -r "$d" runs/gpu/; done  # runs to resume

# Epochs per model from the measured step time (4 runs share the GPU: ×1.3), validation included.
read -r EM EL EF < <(python3 - "$BENCH" "$DEADLINE" <<'EOF'
import json, sys
left = int(sys.argv[2]) - 90
try:
    t = {m["model"]: m["train_step_s"] * 1.3 + m["eval_64_s"] * 12 / 354 for m in json.load(open(sys.argv[1]))["models"]}
except OSError:
    t = {}
def epochs(name):
    if name not in t:
        return 40
    return max(40, min(60, int(left / (354 * t[name]))))
print(epochs("m"), epochs("l"), epochs("full"))
EOF
)
echo "epochs: m $EM, l $EL, full $EF; deadline ${DEADLINE}s"

launch() {  # launch RUN_NAME ARGS...: one training in the background, stopped at the deadline
  local name=$1; shift
  local left=$((DEADLINE - ($(date +%s) - T0)))
  timeout -s TERM "$left" python3 -m sedge.cli train "$@" --device cuda --checkpoint-minutes 0.5 \
    --out "runs/gpu/$name" >> "runs/gpu/$name.log" 2>&1 &
}
launch mini_s_epochs60 --model s --data mini --epochs 60 --lr 0.005
launch "mini_m_epochs$EM" --model m --data mini --epochs "$EM" --lr 0.005
launch "mini_l_epochs$EL" --model l --data mini --epochs "$EL" --lr 0.005
launch "mini_full_epochs$EF" --model full --data mini --epochs "$EF" --lr 0.005
while [ -n "$(jobs -r)" ]; do
  sleep 30
  echo "--- $(( $(date +%s) - T0 )) s"
  for f in runs/gpu/*.log; do printf '%s: %s\n' "$f" "$(grep -a 'epoch [0-9]*:' "$f" | tail -1)"; done
done
wait
for f in runs/gpu/*.log; do echo "== $f"; grep -a -v 'it/s\|s/it\|batch/s\|s/batch' "$f" | tail -5; done
tar czf "$OUT/gpu_runs.tar.gz" runs/gpu
cat runs/gpu/*/summary.json 2>/dev/null
echo "done in $(( $(date +%s) - T0 )) s"
