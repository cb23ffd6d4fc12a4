# Evaluate nano v2 per game, time its play and ship it into zoo/nano/ with its card, from the repository root.
# About 30 minutes on 2 cores. MODEL is the model folder to ship (config.json + model.safetensors);
# RUNS the run folders of its training, for the card's budget table and curves. The held-out play and the
# inverse-dynamics models (the judges) are those of configs/nano-v2/eval-data.sh (run here when one is missing).
#   bash configs/nano-v2/ship.sh
#   MODEL=runs/other/model RUNS="runs/a runs/b" bash configs/nano-v2/ship.sh
#   SHIP_ONLY=1 bash configs/nano-v2/ship.sh   # ship from the reports and bench file already in OUT
# The default MODEL is what the zoo holds: the interim nano v2 (below, runs/v2-candidate: the second GPU burst's
# model, gpu-level.yaml, its $OUT/level copied to runs/gpu-burst-2/level, sampled in 2 steps instead of 3) with a
# motion net: the motion lab's arm A (configs/nano-v2/motion-lab/lab.py from runs/v2-candidate, export.py into
# runs/nano-motion-lab/model), trained on by configs/nano-v2/motion.yaml (runs/nano-v2-motion), played with its moves
# chosen per sprite and nothing redrawn (dynamics.motion.decode "sprite", redraw false: runs/nano-v2-motion-play).
set -euo pipefail
MODEL=${MODEL:-runs/nano-v2-motion-play}
OUT=${OUT:-runs/ship-v2-motion-play}
export OMP_NUM_THREADS=1
pw() { nice -n 19 .venv/bin/pocketworld "$@"; }

if [ ! -f runs/v2-candidate/config.json ]; then
  mkdir -p runs/v2-candidate
  cp runs/gpu-burst-2/level/model.safetensors runs/v2-candidate/
  .venv/bin/python -c 'import json, sys; c = json.load(open(sys.argv[1])); c["dynamics"]["denoise_steps"] = 2
json.dump(c, open(sys.argv[2], "w"), indent=2)' runs/gpu-burst-2/level/config.json runs/v2-candidate/config.json
fi

if [ "$MODEL" = runs/nano-v2-motion-play ] && [ ! -f "$MODEL/config.json" ]; then
  mkdir -p "$MODEL"
  cp runs/nano-v2-motion/model/model.safetensors "$MODEL/"
  .venv/bin/python -c 'import json, sys; c = json.load(open(sys.argv[1]))
c["dynamics"]["motion"].update(decode="sprite", sprite_margin=2.0, redraw=False)
json.dump(c, open(sys.argv[2], "w"), indent=2)' runs/nano-v2-motion/model/config.json "$MODEL/config.json"
fi

# eval-data.sh makes only what is missing
ls shards/v2/{maze,platformer,shooter}-test/report.json runs/v2-idm-{maze,platformer,shooter}/idm.json >/dev/null 2>&1 \
  || OMP_NUM_THREADS=2 nice -n 19 bash configs/nano-v2/eval-data.sh

# The GPU bursts (configs/nano-v2/gpu-burst.sh) brought back metrics, not run folders: give them their configs.
if [ -z "${RUNS:-}" ]; then
  for part in 1/denoise:gpu-denoise 1/loop:gpu-denoise-loop 2/level:gpu-level; do
    run="$OUT/runs/nano-v2-${part#*:}"
    mkdir -p "$run"
    cp "configs/nano-v2/${part#*:}.yaml" "$run/config.yaml"
    cp "runs/gpu-burst-${part%%:*}-metrics.jsonl" "$run/metrics.jsonl"
  done
  RUNS="runs/nano-v2 runs/nano-v2-up runs/nano-v2-joint runs/nano-v2-loop runs/nano-v2-denoise \
runs/nano-v2-denoise-loop $OUT/runs/nano-v2-gpu-denoise $OUT/runs/nano-v2-gpu-denoise-loop $OUT/runs/nano-v2-gpu-level \
runs/nano-v2-motion"
fi

commands=()
for game in maze platformer shooter; do
  command="pocketworld evaluate $MODEL --data shards/v2/$game-test --split test --idm runs/v2-idm-$game \
--episodes 3 --horizon 30 --recon-frames 48 --ssim-every 5 --threads 2 --report $OUT/$game"
  # shellcheck disable=SC2086
  [ -n "${SHIP_ONLY:-}" ] || pw ${command#pocketworld } --no-progress
  commands+=("$command")
done

# bench play times a zoo variant: a zoo folder holding MODEL as nano
if [ -z "${SHIP_ONLY:-}" ]; then
  zoo=$(mktemp -d)
  mkdir "$zoo/nano"
  cp "$MODEL/config.json" "$MODEL/model.safetensors" "$zoo/nano/"
  POCKETWORLD_ZOO=$zoo pw bench play --variant nano --threads 2 --json "$OUT/bench_play.json"
  rm -r "$zoo"
fi

# shellcheck disable=SC2086
pw ship "$MODEL" --variant nano --report "$OUT/maze" "$OUT/platformer" "$OUT/shooter" \
  --evaluate-command "${commands[@]}" --runs $RUNS --bench "$OUT/bench_play.json" \
  --notes configs/nano-v2/card-notes.md

# the card cites the Play tab strip of configs/nano-v2/motion-lab/browser_strip.py; ship writes zoo/nano/ anew
strip=runs/app_browser/play-right-left.png
[ -f "$strip" ] && cp "$strip" zoo/nano/eval/ || echo "note: no $strip (browser_strip.py makes it); the card cites it"
