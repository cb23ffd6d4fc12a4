# Evaluate nano v2 per game, time its play and ship it into zoo/nano/ with its card, from the repository root.
# About 30 minutes on 2 cores. MODEL is the model folder to ship (config.json + model.safetensors), by default
# the zoo's own (a re-measure: the same weights, the card anew); RUNS the run folders of its training since the zoo's
# model, for the card's budget table and curves, after those of HISTORY (a zoo folder's training.json: run folders
# are git-ignored and do not outlive their machine). The held-out play is that of configs/nano-v2/eval-data.sh (run
# here when some is missing), the inverse-dynamics models (the judges) the committed ones in judges/.
#   bash configs/nano-v2/ship.sh
#   MODEL=runs/other/model RUNS="runs/a runs/b" bash configs/nano-v2/ship.sh
#   SHIP_ONLY=1 bash configs/nano-v2/ship.sh   # ship from the reports and bench file already in OUT
# How the zoo's weights were made (2026-11-30; the run folders named are gone, their rows are in
# zoo/nano/training.json): the second GPU burst's model (gpu-level.yaml, sampled in 2 steps instead of 3) with a
# motion net: the motion lab's arm A (configs/nano-v2/motion-lab/lab.py, export.py into runs/nano-motion-lab/model),
# trained on by configs/nano-v2/motion.yaml (runs/nano-v2-motion), then gpu-motion-full.yaml on a GPU (runs/nano-v2-w5b1
# holds those weights, fp32); played by objects and nothing redrawn (dynamics.motion.decode "objects", redraw
# false; OUT=runs/ship-obj MODEL=runs/nano-obj, that folder's weights with the zoo's config.json).
set -euo pipefail
MODEL=${MODEL:-zoo/nano}
OUT=${OUT:-runs/ship-nano}
HISTORY=${HISTORY:-zoo/nano}
RUNS=${RUNS:-}
export OMP_NUM_THREADS=1
pw() { nice -n 19 .venv/bin/pocketworld "$@"; }

# eval-data.sh makes only what is missing
ls shards/v2/{maze,platformer,shooter}-test/report.json judges/{maze,platformer,shooter}/idm.json >/dev/null 2>&1 \
  || OMP_NUM_THREADS=2 nice -n 19 bash configs/nano-v2/eval-data.sh

commands=()
for game in maze platformer shooter; do
  command="pocketworld evaluate $MODEL --data shards/v2/$game-test --split test --idm judges/$game \
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

# the card shows RIGHT held against LEFT held from one held-out start per game (real above dreamed: `bench keys`)
pw bench keys "$MODEL" --out "$OUT/keys" --json "$OUT/bench_keys.json" >/dev/null

# the card cites the Play tab strip of configs/nano-v2/motion-lab/browser_strip.py; ship writes zoo/nano/ anew, so
# a re-measure of the zoo's weights keeps the strip they were seen with
strip=runs/app_browser/play-right-left.png
if [ ! -f "$strip" ] && [ "$MODEL" = zoo/nano ] && [ -f zoo/nano/eval/play-right-left.png ]; then
  mkdir -p runs/app_browser
  cp zoo/nano/eval/play-right-left.png "$strip"
fi

# shellcheck disable=SC2086
pw ship "$MODEL" --variant nano --report "$OUT/maze" "$OUT/platformer" "$OUT/shooter" \
  --evaluate-command "${commands[@]}" --history "$HISTORY" --runs $RUNS --bench "$OUT/bench_play.json" \
  --notes configs/nano-v2/card-notes.md

for game in maze platformer shooter; do
  cp "$OUT/keys/$game-200039.png" "zoo/nano/eval/keys-$game.png"
done
[ -f "$strip" ] && cp "$strip" zoo/nano/eval/ || echo "note: no $strip (browser_strip.py makes it); the card cites it"
