# nano v2's training bursts on a lent GPU (the `device` tool; one call of under 10 minutes), from the repository
# root. It makes (unless they are there) 4 x FRAMES of play per game with data.sh's recipe (more level seeds) on
# 15 cores at once, then trains each CONFIG:MINUTES:NAME[:OVERRIDES] given, in turn, or all at once with
# PARALLEL=1 (OVERRIDES: comma-separated section.field=value; a stage with overrides trains into runs/gpu-NAME,
# not its config's out).
# Each stage's model (config.json, model.safetensors) and metrics.jsonl come back as $OUT/NAME.tgz (the first two
# bursts brought back folders; the device returns at most 8 files). The first burst (01:16 UTC, 2026-11-30;
# 565 s of device time):
#   run(command="bash configs/nano-v2/gpu-burst.sh configs/nano-v2/gpu-denoise.yaml:5:denoise
#                configs/nano-v2/gpu-denoise-loop.yaml:2.5:loop", carry=["runs/gpu-init"], timeout_s=590)
# with runs/gpu-init from step 5's checkpoint (denoiser) and step 6's export (upsampler). The second (the
# context-level arm, runs/gpu-init = the first burst's loop model):
#   run(command="FRAMES=6000 bash configs/nano-v2/gpu-burst.sh configs/nano-v2/gpu-level.yaml:2.8:level", ...)
# The third (19:20 UTC, 2026-11-30; the motion net, three arms at once from zoo/nano, nothing carried; 386 s):
#   run(command="rm -rf runs/nano-v2-motion-gpu runs/nano-v2-motion-full-gpu runs/gpu-full-w5; PARALLEL=1 bash
#     configs/nano-v2/gpu-burst.sh configs/nano-v2/gpu-motion.yaml:6:motion configs/nano-v2/gpu-motion-full.yaml:6:full
#     configs/nano-v2/gpu-motion-full.yaml:6:full-w5:frames.motion_moving_weight=5", timeout_s=560)
# A dry run on the CPU: FRAMES=600 PYTHON=.venv/bin/python OUT=/tmp/out bash configs/nano-v2/gpu-burst.sh
#   configs/nano-v2/gpu-denoise.yaml:0.3:denoise
set -uo pipefail
PYTHON=${PYTHON:-python3}
FRAMES=${FRAMES:-12000}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
log="$OUT/log.txt"
started=$(date +%s)
stamp() { echo "[$(($(date +%s) - started)) s] $*" | tee -a "$log"; }

stamp "$($PYTHON -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")')"
for game in maze platformer shooter; do
  for part in 0 1 2 3; do
    [ -f "shards/gpu/$game-$part/report.json" ] || $PYTHON -m core collect --game "$game" --agent held \
      --frames "$FRAMES" --seed $((300000 + 10000 * part)) --split train --max-steps 400 \
      --out "shards/gpu/$game-$part" --no-progress >>"$OUT/collect.txt" 2>&1 &
  done
  [ -f "shards/gpu/$game-val/report.json" ] || $PYTHON -m core collect --game "$game" --agent held --frames 1536 \
    --seed 400000 --split val --max-steps 600 --out "shards/gpu/$game-val" --no-progress >>"$OUT/collect.txt" 2>&1 &
done
wait
stamp "data: $(du -sh shards/gpu | cut -f1)"

train() {  # config, minutes, name under $OUT, overrides
  local run extra=()
  run=$(sed -n 's/^out: //p' "$1")
  if [ -n "$4" ]; then
    IFS=, read -ra extra <<<"$4"
    run="runs/gpu-$3"
    extra+=("out=$run")
  fi
  $PYTHON -m core train frames --config "$1" train.time_limit_minutes="$2" log.progress=false "${extra[@]}" \
    >>"$OUT/$3-log.txt" 2>&1
  stamp "$3 ($1 ${extra[*]}) exited $?"
  tar czf "$OUT/$3.tgz" -C "$run" model/config.json model/model.safetensors metrics.jsonl
}
export OMP_NUM_THREADS=4
for stage in "$@"; do
  IFS=: read -r config minutes name overrides <<<"$stage"
  if [ -n "${PARALLEL:-}" ]; then
    train "$config" "$minutes" "$name" "$overrides" &
  else
    train "$config" "$minutes" "$name" "$overrides"
  fi
done
wait
stamp "done"
