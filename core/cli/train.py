"""Training commands: `train STAGE`, `plot RUN_DIR` and the `bench train` benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STAGE_HELP = (
    "tokenizer (reconstruct frames through tokens), tokens (encode gameplay shards into token shards), "
    "dynamics (next-frame tokens), decoder (frame from tokens + previous frame), long_horizon (train on "
    "own rollouts), distill (dynamics from a teacher)"
)


def register(commands, benches) -> None:
    from core.train.config import STAGES

    train = commands.add_parser(
        "train",
        help="train one stage of a model (Accelerate: 1 process, several, GPUs)",
        description=f"Stages: {STAGE_HELP}. Multi-process: accelerate launch "
        "--multi_gpu --num_processes N -m core train ... (add train.cpu=true on CPU).",
    )
    train.add_argument("stage", choices=STAGES, help="which stage to run")
    train.add_argument("--config", help="YAML or TOML run config (see configs/nano/); default: built-in defaults")
    # REMAINDER, re-parsed in cmd_train: argparse alone rejects positionals that follow --config FILE
    train.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,
        metavar="SECTION.FIELD=VALUE",
        help="override config fields, e.g. train.steps=500 optim.lr=1e-4 out=runs/x",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in `out` from its latest checkpoint (starts it if it has none)",
    )
    train.set_defaults(func=cmd_train)

    plot = commands.add_parser("plot", help="draw a training run's loss and validation curves")
    plot.add_argument("run_dir", help="a run folder (holding metrics.jsonl)")
    plot.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png)")
    plot.set_defaults(func=cmd_plot)

    bench = benches.add_parser("train", help="training frames/s and peak memory of a stage")
    bench.add_argument(
        "--stage",
        choices=STAGES,
        help="stage to time: frames for the frames family (every zoo variant), a tokens-family stage for a variant "
        "of that family (default: the variant's family's main stage, frames or dynamics)",
    )
    bench.add_argument("--variant", default="nano", help="zoo variant (default: nano)")
    bench.add_argument("--batch-size", type=int, default=2, help="clips per step (default: 2)")
    bench.add_argument("--clip-len", type=int, help="frames per clip (default: the stage's own: 1, 2, 6 or 32)")
    bench.add_argument("--steps", type=int, default=3, help="timed optimizer steps (default: 3)")
    bench.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    bench.add_argument("--json", help="also write the row to this JSON file")
    bench.set_defaults(func=cmd_bench_train)


def cmd_train(args) -> int:
    from core.cli import UsageError
    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.loop import TrainingDiverged

    options = argparse.ArgumentParser(prog="pocketworld train", add_help=False)
    options.add_argument("--config")
    options.add_argument("--resume", action="store_true")
    known, overrides = options.parse_known_args(args.overrides)
    bad = [item for item in overrides if item.startswith("-") or "=" not in item]
    if bad:
        raise UsageError(f"unrecognized argument(s) {' '.join(bad)}; overrides look like section.field=value")
    config = load_run_config(known.config or args.config, overrides, stage=args.stage)
    try:
        summary = run_stage(config, resume=known.resume or args.resume)
    except TrainingDiverged as err:
        print(f"pocketworld train: stopped: {err}", file=sys.stderr)
        return 3
    from accelerate import PartialState

    if PartialState().is_main_process:  # one summary: processes printing at once can share a line
        print(json.dumps(summary))
    return 0


def cmd_plot(args) -> int:
    from core.train.metrics import plot_run

    out = args.out or str(Path(args.run_dir) / "curves.png")
    names = plot_run(args.run_dir, out)
    print(f"wrote {out} ({', '.join(names)})")
    return 0


def cmd_bench_train(args) -> int:
    from core.train.bench import bench_train, default_stage

    for name in ("batch_size", "steps"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive")
    stage = args.stage or default_stage(args.variant)
    row = bench_train(stage, args.variant, args.batch_size, args.clip_len, args.steps, args.threads)
    print("  ".join(f"{k}={v}" for k, v in row.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2))
        print(f"wrote {args.json}")
    return 0
