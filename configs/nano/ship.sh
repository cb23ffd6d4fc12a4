# Ship nano v1 into zoo/nano/ (kept as a record: zoo/nano is now nano v2, configs/nano-v2/ship.sh, and ship
# refuses v1's tokens-family weights as nano), from the repository root, once the configs/nano/ stages
# have made these run folders and the --evaluate-command below (on the test shards made as card-notes.md says)
# has made the report.
. .venv/bin/activate
pocketworld ship runs/nano-dynamics/model --variant nano --report runs/nano-eval-shipped \
 --evaluate-command "pocketworld evaluate nano --data shards/platformer-test --split test --idm runs/eval-demo/idm-platformer --episodes 3 --horizon 30 --recon-frames 48 --threads 2 --report runs/nano-eval-shipped" \
 --runs runs/nano-tokenizer-lr1e-3 runs/nano-tokenizer runs/nano-tokenizer-sprites runs/nano-decoder runs/nano-dynamics \
 --bench runs/nano/bench_play_shipped.json --notes configs/nano/card-notes.md
