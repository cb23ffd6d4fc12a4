"""Evaluation commands: `evaluate` (every metric of a model on held-out play) and `idm train`."""

from __future__ import annotations

from pathlib import Path


def register(commands, benches) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="measure how good a model is at being a game (JSON, Markdown, plots)"
    )
    evaluate.add_argument("model", help="a zoo name (weights in zoo/<name>/) or a folder saved with save_pretrained")
    evaluate.add_argument("--data", nargs="+", required=True, help="shard files or folders of recorded play")
    evaluate.add_argument("--split", default="test", help="which split's levels to evaluate on (default: test)")
    evaluate.add_argument("--json", help="write the results JSON here")
    evaluate.add_argument("--report", help="write results.json, report.md, plots and a GIF into this folder")
    evaluate.add_argument("--adapter", help="a LoRA adapter folder trained on MODEL (peft format)")
    evaluate.add_argument("--idm", help="an IDM folder from `pocketworld idm train` (action accuracy)")
    evaluate.add_argument("--episodes", type=int, default=8, help="longest held-out episodes to use (default: 8)")
    evaluate.add_argument(
        "--horizon", type=float, default=120, help="longest rollout in seconds at 30 FPS (default: 120)"
    )
    evaluate.add_argument(
        "--windows",
        action="store_true",
        help="cut each held-out stretch into --horizon long windows, each rolled out on its own (one long "
        "recording, such as an ingested video, then gives several rollouts; --episodes counts windows)",
    )
    evaluate.add_argument(
        "--recon-frames", type=int, default=64, help="frames per episode for reconstruction (default: 64)"
    )
    evaluate.add_argument(
        "--keep-frames",
        type=int,
        default=300,
        help="generated frames per episode kept for physics, FVD and the GIF (default: 300)",
    )
    evaluate.add_argument("--ssim-every", type=int, default=1, help="SSIM on every n-th rollout step (default: 1)")
    evaluate.add_argument("--temperature", type=float, default=0.0, help="rollout sampling temperature (default: 0)")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling and random-action seed (default: 0)")
    evaluate.add_argument(
        "--lpips-weights", help="LPIPS safetensors file or folder (default: search; see core/evaluation/weights.py)"
    )
    evaluate.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"), help="LPIPS backbone (default: alex)")
    evaluate.add_argument("--i3d-weights", help="I3D safetensors file or folder for FVD (default: search)")
    evaluate.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=cmd_evaluate)

    idm = commands.add_parser("idm", help="inverse-dynamics models that judge generated frames")
    idm_commands = idm.add_subparsers(dest="idm_command", required=True, metavar="IDM_COMMAND")
    train = idm_commands.add_parser("train", help="train an IDM on recorded play of one game and save it")
    train.add_argument("--data", nargs="+", required=True, help="shard files or folders of one game's play")
    train.add_argument("--out", required=True, help="folder for idm.safetensors + idm.json")
    train.add_argument("--train-split", default="train", help="split to train on (default: train)")
    train.add_argument("--eval-split", default="test", help="held-out split to report accuracy on (default: test)")
    train.add_argument("--steps", type=int, default=1500, help="optimiser steps (default: 1500)")
    train.add_argument("--batch", type=int, default=32, help="transitions per step (default: 32)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    train.add_argument(
        "--pool",
        type=int,
        default=4,
        help="average-pool frames by this before the convs (default: 4; 2 keeps a 2 px move a whole pixel: "
        "held-out platformer accuracy 39%% -> 74%%, at ~4x the training time)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_idm_train)


def _positive(**values) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")


def _perceptual(args):
    """(lpips model or None, note, i3d or None, note, where each came from)."""
    from core.evaluation.fvd import FILE as I3D_FILE
    from core.evaluation.fvd import load_i3d
    from core.evaluation.lpips import FILES, load_lpips
    from core.evaluation.weights import find_weights, not_found

    lpips_path, lpips_places = find_weights(FILES[args.lpips_net], args.lpips_weights)
    i3d_path, i3d_places = find_weights(I3D_FILE, args.i3d_weights)
    lpips = load_lpips(lpips_path, args.lpips_net) if lpips_path else None
    i3d = load_i3d(i3d_path) if i3d_path else None
    return lpips, not_found(lpips_places), i3d, not_found(i3d_places), lpips_path, i3d_path


def cmd_evaluate(args) -> int:
    import torch

    from core.evaluation.episodes import load_episodes
    from core.evaluation.evaluate import EvalConfig, evaluate_model
    from core.evaluation.idm import load_idm
    from core.evaluation.loading import check_compatible
    from core.evaluation.report import target_rows, write_json, write_report
    from core.zoo import load

    _positive(
        episodes=args.episodes,
        horizon=args.horizon,
        recon_frames=args.recon_frames,
        keep_frames=args.keep_frames,
        ssim_every=args.ssim_every,
        threads=args.threads,
    )
    if not args.json and not args.report:
        print("note: no --json or --report given; printing the summary only")
    torch.set_num_threads(args.threads)
    # everything that can be wrong is checked before the first rollout step
    model = load(args.model, args.adapter)
    max_frames = int(args.horizon * 30) + 1
    episodes = load_episodes(
        args.data, args.split, min_frames=2, max_episodes=args.episodes, max_frames=max_frames, windows=args.windows
    )
    check_compatible(model, episodes)
    games = {e.meta["game"] for e in episodes}
    if len(games) > 1:
        raise ValueError(
            f"the {args.split} split mixes games ({', '.join(sorted(games))}); evaluate one game at a time"
        )
    idm, idm_info = load_idm(args.idm) if args.idm else (None, None)
    if idm is not None and idm.config.image_size != model.config.image_size:
        raise ValueError(f"the IDM reads {idm.config.image_size}px frames, the model makes {model.config.image_size}px")
    lpips, lpips_note, i3d, fvd_note, lpips_path, i3d_path = _perceptual(args)

    config = EvalConfig(
        recon_frames=args.recon_frames,
        keep_frames=args.keep_frames,
        temperature=args.temperature,
        seed=args.seed,
        ssim_every=args.ssim_every,
    )
    results = evaluate_model(
        model,
        episodes,
        config,
        idm=idm,
        idm_info=idm_info,
        lpips=lpips,
        lpips_note=lpips_note,
        i3d=i3d,
        fvd_note=fvd_note,
        progress=not args.no_progress,
    )
    results["info"] = {
        "model": args.model + (f" + adapter {args.adapter}" if args.adapter else ""),
        "data": ", ".join(args.data),
        "split": args.split,
        "seeds": sorted({int(e.meta["seed"]) for e in episodes}),
        "episodes": len(episodes),
        "frames": int(sum(len(e.frames) for e in episodes)),
        "game": games.pop(),
        "idm": args.idm,
        "lpips": str(lpips_path) if lpips_path else None,
        "i3d": str(i3d_path) if i3d_path else None,
        "threads": args.threads,
    }
    for row in target_rows(results["metrics"]):
        value = f"{row['value']:.4g}" if isinstance(row["value"], (int, float)) else row["value"]
        print(f"{row['metric']:<30} {value:<12} target {row['target']:<10} {row['status']}")
    if args.json:
        print(f"wrote {write_json(results, args.json)}")
    if args.report:
        paths = write_report(results, args.report)
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_idm_train(args) -> int:
    import torch

    from core.evaluation.idm import save_idm
    from core.evaluation.idm_train import IDMTrainConfig, train_idm

    _positive(steps=args.steps, batch=args.batch, threads=args.threads, pool=args.pool)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; pass a new folder for the IDM")
    torch.set_num_threads(args.threads)
    model, info = train_idm(
        args.data,
        train_split=args.train_split,
        eval_split=args.eval_split,
        config=IDMTrainConfig(steps=args.steps, batch=args.batch, seed=args.seed),
        pool=args.pool,
        progress=not args.no_progress,
    )
    save_idm(model, out, info)
    heldout = info["heldout"]
    print(
        f"IDM for {info['game']}: held-out accuracy {heldout['accuracy']:.4f} on {heldout['count']} transitions "
        f"of split {args.eval_split} (seeds {info['eval_seeds']}); labels: {info['labels']}"
    )
    print(f"per action: {heldout['per_action']}")
    print(f"wrote {out}")
    return 0
