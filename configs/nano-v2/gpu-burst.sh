# nano v2's training burst on a lent GPU (the `device` tool; one call of under 10 minutes), from the repository
# root. It needs runs/gpu-init (carried): the model it starts from (see gpu-denoise.yaml). It makes 4x the play of
# data.sh (the same recipe, more level seeds) on 15 cores at once, trains gpu-denoise.yaml, then
# gpu-denoise-loop.yaml, and leaves both models and their metrics under $OUT:
#   run(command="bash configs/nano-v2/gpu-burst.sh", carry=["runs/gpu-init"], timeout_s=590)
# A dry run on the CPU: FRAMES=600 MINUTES_A=0.3 MINUTES_B=0.3 PYTHON=.venv/bin/python OUT=/tmp/out bash ...
set -uo pipefail
PYTHON=${PYTHON:-python3}
FRAMES=${FRAMES:-12000}
MINUTES_A=${MINUTES_A:-5}
MINUTES_B=${MINUTES_B:-2.5}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
log="$OUT/log.txt"
started=$(date +%s)
stamp() { echo "[$(($(date +%s) - started)) s] $*" | tee -a "$log"; }

stamp "$($PYTHON -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")')"
for game in maze platformer shooter; do
  for part in 0 1 2 3; do
    $PYTHON -m core collect --game "$game" --agent held --frames "$FRAMES" --seed $((300000 + 10000 * part)) \
      --split train --max-steps 400 --out "shards/gpu/$game-$part" --no-progress >>"$OUT/collect.txt" 2>&1 &
  done
  $PYTHON -m core collect --game "$game" --agent held --frames 1536 --seed 400000 --split val --max-steps 600 \
    --out "shards/gpu/$game-val" --no-progress >>"$OUT/collect.txt" 2>&1 &
done
wait
stamp "data: $(du -sh shards/gpu | cut -f1)"

train() {  # config, minutes, name under $OUT
  local run
  run=$(sed -n 's/^out: //p' "$1")
  $PYTHON -m core train frames --config "$1" train.time_limit_minutes="$2" log.progress=false >>"$log" 2>&1
  stamp "$1 exited $?"
  mkdir -p "$OUT/$3"
  cp "$run/model/config.json" "$run/model/model.safetensors" "$OUT/$3/" 2>/dev/null
  cp "$run/metrics.jsonl" "$OUT/$3-metrics.jsonl" 2>/dev/null
}
export OMP_NUM_THREADS=4
train configs/nano-v2/gpu-denoise.yaml "$MINUTES_A" denoise
train configs/nano-v2/gpu-denoise-loop.yaml "$MINUTES_B" loop
stamp "done"
