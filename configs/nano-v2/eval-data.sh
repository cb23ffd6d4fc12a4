# Held-out play for evaluating nano v2 (test-split levels, random keys held 1-8 frames: the next key cannot be
# guessed from the past) and one inverse-dynamics model per game, trained on the training play of
# configs/nano-v2/data.sh and scored on these test levels. From the repository root; about 30 minutes.
# The IDMs pool frames by 2 (128x128), the shooter's not at all: its small ship's 3 px steps blur away pooled
# (held-out accuracy on real transitions at pool 4 / 2 / 1: shooter 12% / 19% / 70%; maze 54% / 73%;
# platformer 39% / 74%). Pool 1 costs ~18 minutes on 2 threads.
set -euo pipefail
. .venv/bin/activate
for game in platformer maze shooter; do
  pool=2
  [ "$game" = shooter ] && pool=1
  pocketworld collect --game "$game" --agent held --frames 4096 --seed 200000 --split test --out "shards/v2/$game-test" --no-progress
  pocketworld idm train --data "shards/v2/$game-held" "shards/v2/$game-test" --out "runs/v2-idm-$game" --steps 3000 \
    --pool "$pool" --threads 2 --no-progress
done
