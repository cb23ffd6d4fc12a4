#!/usr/bin/env bash
# "Bring your own game", end to end, on bricks (the game no zoo model trains on), timed phase by phase:
# record 10 minutes of play as a video + key log and a separate 2-minute held-out recording (what a developer
# exports from their own engine), ingest both, fine-tune nano on 2 cores for 9 minutes (then ~3.5 more to score
# it and choose how it plays), push to the local registry; then the judge: an IDM trained on our own bricks play,
# and `evaluate` base vs fine-tune on the held-out recording, cut into four 30-s windows (each its own rollout).
# Writes everything under OUT (default runs/byog); times in OUT/times.txt.
#   bash configs/bricks/path.sh            # ~35 minutes on 2 cores
set -euo pipefail
OUT=${OUT:-runs/byog}
MINUTES=${MINUTES:-10}
BUDGET=${BUDGET:-9}  # scoring and the 64-frame play sweep take ~3.5 min after it: 11 made the path 16.6 min
THREADS=${THREADS:-2}
mkdir -p "$OUT"
PW=.venv/bin/pocketworld
timed() {  # timed PHASE COMMAND...: wall time and peak memory of one phase into OUT/times.txt
  local phase=$1; shift
  /usr/bin/time -f "$phase %e s, peak %M KB" -a -o "$OUT/times.txt" "$@"
}

# the user's side: recordings -> shards -> adapter -> registry
[ -f "$OUT/train.mp4" ] || timed record-train $PW record --game bricks --agent scripted --minutes "$MINUTES" \
  --split train --out "$OUT/train.mp4" --keys "$OUT/train.csv" --no-progress
[ -f "$OUT/test.mp4" ] || timed record-test $PW record --game bricks --agent scripted --minutes 2 \
  --split test --out "$OUT/test.mp4" --keys "$OUT/test.csv" --no-progress
[ -d "$OUT/shards-train" ] || timed ingest-train $PW ingest "$OUT/train.mp4" --actions "$OUT/train.csv" \
  --game bricks --out "$OUT/shards-train" --no-progress
[ -d "$OUT/shards-test" ] || timed ingest-test $PW ingest "$OUT/test.mp4" --actions "$OUT/test.csv" \
  --game bricks --split test --out "$OUT/shards-test" --no-progress
[ -d "$OUT/adapter" ] || timed finetune $PW finetune --base nano --data "$OUT/shards-train" --out "$OUT/adapter" \
  --minutes "$BUDGET" --steps 100000 --threads "$THREADS" --no-progress
POCKETWORLD_REGISTRY=$OUT/registry timed push $PW push "$OUT/adapter" --repo local/bricks --update

# our side: the judge of action accuracy, trained on our own bricks play (ground-truth state: visible keys)
[ -d "$OUT/idm-data" ] || timed idm-data $PW collect --game bricks --agent held --frames 6000 --split train \
  --max-steps 400 --out "$OUT/idm-data" --no-progress
[ -d "$OUT/idm-test-data" ] || timed idm-test-data $PW collect --game bricks --agent held --frames 1536 --split test \
  --max-steps 400 --out "$OUT/idm-test-data" --no-progress
[ -d "$OUT/idm" ] || timed idm $PW idm train --data "$OUT/idm-data" "$OUT/idm-test-data" --pool 2 --out "$OUT/idm" \
  --threads "$THREADS" --no-progress
for who in base finetuned; do
  adapter=(); [ "$who" = finetuned ] && adapter=(--adapter "$OUT/adapter")
  timed "evaluate-$who" $PW evaluate nano "${adapter[@]}" --data "$OUT/shards-test" --split test --idm "$OUT/idm" \
    --episodes 4 --windows --horizon 30 --recon-frames 48 --ssim-every 5 --threads "$THREADS" --report "$OUT/eval-$who" --no-progress
done
cat "$OUT/times.txt"
