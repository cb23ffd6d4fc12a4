# Held-out play for evaluating nano v2 (test-split levels, random keys held 1-8 frames: the next key cannot be
# guessed from the past) and one inverse-dynamics model per game: the judge of action accuracy, trained on the
# training play of configs/nano-v2/data.sh (and, for the maze and the platformer, more of the same on other
# levels) and scored on these test levels. From the repository root, on 2 cores: each play collection a minute or
# two; a judge is trained only where judges/GAME is missing (about an hour for the three on 2026-12-02,
# sharing the 2 cores with a training run).
# The judges are committed (judges/GAME: idm.json and 0.3 MB of weights): retrained on another machine by the
# same commands, the platformer's read its held-out transitions at 84.2% where the card's before had read 91.0%,
# and the shipped nano's generated ones at 54.9% against 69.3%, so a card's action accuracy is only reproducible
# with the judges that scored it. Those of judges/ were made by this script on 2026-12-02.
# The IDMs pool frames by 2 (128x128), the shooter's not at all: its small ship's 3 px steps blur away pooled
# (held-out accuracy on real transitions at pool 4 / 2 / 1: shooter 12% / 19% / 70%; maze 54% / 73%;
# platformer 39% / 74%). Trained on 12,000 frames of 32-37 levels they learn those levels (platformer: 97% of
# 1,600 transitions of its training levels read, 74% of held-out ones); on 48,000 frames more, twice as long, the maze's
# reads 86.0% and the platformer's 82.3% of held-out transitions (713 s and 661 s to train). The shooter's did not gain
# (24,000 frames more, 4,000 steps: 62.3% against 70.0%, 1,393 s), so it keeps the first recipe.
set -euo pipefail
. .venv/bin/activate
for game in platformer maze shooter; do
  [ -f "shards/v2/$game-test/report.json" ] || pocketworld collect --game "$game" --agent held --frames 4096 \
    --seed 200000 --split test --out "shards/v2/$game-test" --no-progress
  [ -f "judges/$game/idm.json" ] && continue
  if [ "$game" = shooter ]; then
    pocketworld idm train --data "shards/v2/$game-held" "shards/v2/$game-test" --out "judges/$game" \
      --steps 3000 --pool 1 --threads 2 --no-progress
  else
    [ -f "shards/v2/$game-judge/report.json" ] || pocketworld collect --game "$game" --agent held --frames 48000 \
      --seed 310000 --split train --max-steps 400 --out "shards/v2/$game-judge" --no-progress
    pocketworld idm train --data "shards/v2/$game-held" "shards/v2/$game-judge" "shards/v2/$game-test" \
      --out "judges/$game" --steps 6000 --pool 2 --threads 2 --no-progress
  fi
done
