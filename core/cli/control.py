"""`pocketworld bench control`: train lab arms for a fixed budget and compare how well they follow the keys."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = (
    ("idm_accuracy", "IDM acc", "{:.1%}"),
    ("idm_accuracy_real", "IDM real", "{:.1%}"),
    ("delta_psnr_t1", "dPSNR t1", "{:.2f}"),
    ("delta_psnr_t4", "dPSNR t4", "{:.2f}"),
    ("delta_psnr_t16", "dPSNR t16", "{:.2f}"),
    ("action_gap_relative", "gap", "{:+.1%}"),
    ("changed_accuracy", "changed", "{:.1%}"),
    ("rollout_psnr_t16", "PSNR t16", "{:.1f}"),
)


def register(commands, benches) -> None:
    from core.control.data import GAMES

    bench = benches.add_parser(
        "control",
        help="train controllability-lab arms for a time budget; score how well "
        "each follows the keys (JSON + curves per arm, a table)",
    )
    bench.add_argument(
        "--arm",
        default="film",
        help="comma-separated arms, or 'all' (film, input, film-128, film-scripted, film-unroll, "
        "and nano: the shipped nano scored, not retrained); model:FOLDER scores a trained "
        "model folder without training it; default: film",
    )
    bench.add_argument(
        "--minutes",
        type=float,
        default=10.0,
        help="training budget per arm in CPU-minutes (the process's CPU time over all its threads: "
        "10 CPU-minutes are about 5 minutes on 2 idle cores; default: 10)",
    )
    bench.add_argument(
        "--eval-every", type=float, default=2.5, help="CPU-minutes of training between scorings (default: 2.5)"
    )
    bench.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    bench.add_argument("--games", default=",".join(GAMES), help=f"comma-separated games (default: {','.join(GAMES)})")
    bench.add_argument("--out", default="runs/control", help="one folder per arm is made here (default: runs/control)")
    bench.add_argument("--json", metavar="PATH", help="also write every arm's last scores to PATH")
    bench.set_defaults(func=run_bench_control)

    keys = benches.add_parser(
        "keys",
        help="hold RIGHT, then LEFT (or --keys), from held-out levels in the real game and in the "
        "dream: does the dream follow the keys? (a table, JSON, picture strips)",
    )
    keys.add_argument("model", help="a zoo variant (nano) or a model folder")
    keys.add_argument("--games", default=",".join(GAMES), help=f"comma-separated games (default: {','.join(GAMES)})")
    keys.add_argument("--steps", type=int, default=12, help="frames each key is held (default: 12)")
    keys.add_argument(
        "--keys", default="RIGHT,LEFT", help="the two keys held, comma-separated, e.g. UP,NOOP (default: RIGHT,LEFT)"
    )
    keys.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    keys.add_argument(
        "--out",
        help="write one strip picture per game and level here (real above dreamed, the first key's rows "
        "then the second's)",
    )
    keys.add_argument("--json", metavar="PATH", help="also write the scores to PATH")
    keys.set_defaults(func=run_bench_keys)


def run_bench_control(args) -> None:
    from core.cli import UsageError
    from core.control.data import GAMES
    from core.control.lab import ARMS, BASELINE, MODEL_PREFIX, LabConfig, run_arm

    arms = [BASELINE, *ARMS] if args.arm == "all" else [a.strip() for a in args.arm.split(",") if a.strip()]
    unknown = [a for a in arms if a != BASELINE and a not in ARMS and not a.startswith(MODEL_PREFIX)]
    if unknown:
        raise UsageError(f"unknown arm(s) {', '.join(unknown)}; arms: {', '.join([BASELINE, *ARMS])}")
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    if not games or set(games) - set(GAMES):
        raise UsageError(f"--games takes some of {', '.join(GAMES)}, got {args.games!r}")
    if args.minutes <= 0 or args.eval_every <= 0 or args.threads < 1:
        raise UsageError("--minutes and --eval-every must be positive and --threads at least 1")
    config = LabConfig(minutes=args.minutes, eval_every=args.eval_every, threads=args.threads)
    for arm in arms:
        if arm.startswith(MODEL_PREFIX) and not Path(arm[len(MODEL_PREFIX) :]).is_dir():
            raise UsageError(f"{arm}: no such model folder (it holds config.json and model.safetensors)")
    results = [run_arm(arm, Path(args.out) / _folder_name(arm), config, games) for arm in arms]
    print(table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


def run_bench_keys(args) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from core.actions import ACTION_IDS
    from core.cli import UsageError
    from core.control.data import GAMES
    from core.control.keys import KeysConfig, score_game, table
    from core.zoo import load

    games = tuple(g.strip() for g in args.games.split(",") if g.strip())
    if not games or set(games) - set(GAMES):
        raise UsageError(f"--games takes some of {', '.join(GAMES)}, got {args.games!r}")
    if args.steps < 1 or args.threads < 1:
        raise UsageError("--steps and --threads must be at least 1")
    held = tuple(k.strip().upper() for k in args.keys.split(","))
    if len(held) != 2 or held[0] == held[1] or set(held) - set(ACTION_IDS):
        raise UsageError(f"--keys takes two different keys of {', '.join(ACTION_IDS)}, got {args.keys!r}")
    torch.set_num_threads(args.threads)
    model = load(args.model)
    config = KeysConfig(games=games, steps=args.steps, keys=held)
    results = []
    for game in games:
        scores, strips = score_game(model, game, config)
        results.append(scores)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            for seed, picture in zip(config.seeds, strips):
                Image.fromarray(np.ascontiguousarray(picture)).save(Path(args.out) / f"{game}-{seed}.png")
    print(table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"model": args.model, "steps": args.steps, "keys": list(held), "games": results}, indent=2)
        )


def _folder_name(arm: str) -> str:
    """runs/control/<this>: an arm's name, or for model:PATH the path's last parts."""
    from core.control.lab import MODEL_PREFIX

    if not arm.startswith(MODEL_PREFIX):
        return arm
    parts = Path(arm[len(MODEL_PREFIX) :]).resolve().parts
    return "model-" + "-".join(parts[-2:])


def table(results: list[dict]) -> str:
    """A markdown table: one row per arm, the mean over games of its last scoring."""
    head = ["arm", "CPU-min", "frame views", "train fps", "play fps"] + [label for _, label, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        last, mean = result["last"], result["last"]["mean"]
        cells = [
            result["arm"],
            _fmt(last.get("minutes"), "{:.1f}"),
            _fmt(last.get("frame_views"), "{:,}"),
            _fmt(last.get("train_frames_per_second"), "{:.0f}"),
            _fmt(result.get("play_fps"), "{:.0f}"),
        ]
        cells += [_fmt(mean.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
