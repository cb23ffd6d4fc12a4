#!/usr/bin/env bash
# A lab of short bricks fine-tunes: each arm fine-tunes nano for MINUTES on the shards path.sh ingested, with its
# own options, then `evaluate`s base + adapter (its chosen stay prior applied) on the held-out recording with
# path.sh's judge. Needs a finished `OUT=$SRC bash configs/bricks/path.sh`. Results: LAB/ARM/eval/results.json;
# a table: python configs/bricks/lab-table.py LAB
#   SRC=runs/byog15 LAB=runs/bricks-lab bash configs/bricks/finetune-lab.sh     # ~6.5 min an arm on 2 cores
set -euo pipefail
SRC=${SRC:-runs/byog}
LAB=${LAB:-runs/bricks-lab}
MINUTES=${MINUTES:-4}
THREADS=${THREADS:-2}
PW=.venv/bin/pocketworld
# NAME:OPTIONS (options with commas for spaces)
# (the lab of 2026-11-30 ran when finetune's moving weight was 20: its "pairs", "played" and "played-noise3" are
# the arms below with weight 20 named)
ARMS=${ARMS:-"mw20:--moving-weight,20 mw5:--moving-weight,5 played-mw20:--played,--moving-weight,20
  played-mw5:--played,--moving-weight,5 played-noise3-mw20:--played,--context-noise,0.3,--moving-weight,20"}
for arm in $ARMS; do
  name=${arm%%:*}; options=${arm#*:}; options=${options//,/ }
  dir=$LAB/$name
  mkdir -p "$dir"
  # shellcheck disable=SC2086  # the arm's options are words
  [ -d "$dir/adapter" ] || $PW finetune --base nano --data "$SRC/shards-train" --out "$dir/adapter" \
    --minutes "$MINUTES" --steps 100000 --threads "$THREADS" --no-progress $options > "$dir/finetune.log" 2>&1
  [ -f "$dir/eval/results.json" ] || $PW evaluate nano --adapter "$dir/adapter" --data "$SRC/shards-test" \
    --split test --idm "$SRC/idm" --episodes 4 --windows --horizon 30 --recon-frames 48 --ssim-every 5 \
    --threads "$THREADS" --report "$dir/eval" --no-progress > "$dir/eval.log" 2>&1
  echo "$name done $(date +%T)"
done
