# The play nano v2 learns from, made from the repository root (about 3 minutes; shards/ is git-ignored).
# Random keys held for 1-8 frames (agent "held", blind to the game) on train-split levels: the same recording
# `pocketworld bench control` makes for its arms (runs/control-data/*-held-train); and a val split for
# validation during training.
set -euo pipefail
. .venv/bin/activate
for game in maze platformer shooter; do
  pocketworld collect --game "$game" --agent held --frames 12000 --seed 300000 --split train --max-steps 400 \
    --out "shards/v2/$game-held" --no-progress
  pocketworld collect --game "$game" --agent held --frames 1536 --seed 400000 --split val --max-steps 600 \
    --out "shards/v2/$game-val" --no-progress
done
