# Held-out play for evaluating nano v2 (test-split levels, random keys held 1-8 frames: the next key cannot be
# guessed from the past) and one inverse-dynamics model per game, trained on the training play of
# configs/nano-v2/data.sh and scored on these test levels. From the repository root; a few minutes.
set -euo pipefail
. .venv/bin/activate
for game in platformer maze shooter; do
  pocketworld collect --game "$game" --agent held --frames 4096 --seed 200000 --split test --out "shards/v2/$game-test" --no-progress
  pocketworld idm train --data "shards/v2/$game-held" "shards/v2/$game-test" --out "runs/v2-idm-$game" --steps 3000 --pool 2 --threads 2 --no-progress
done
