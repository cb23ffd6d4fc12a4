"""Fine-tune commands: `ingest`, `finetune`, `push`, and `hub list|info|pull` (registered in core/cli)."""

from __future__ import annotations

import json


def register(commands, benches) -> None:
    ingest = commands.add_parser("ingest", help="validate your gameplay and convert it into training shards")
    ingest.add_argument(
        "source",
        help="a video (mp4/webm/gif/mkv/mov/avi), a folder or .zip of PNG frames, or .tar shards (a file or a folder)",
    )
    ingest.add_argument("--out", required=True, help="a new (or empty) folder for the shards")
    ingest.add_argument(
        "--actions",
        help="the action log: CSV 'frame,keys' or JSON, one entry per frame "
        "(default: actions.csv/actions.json inside a frames folder or zip)",
    )
    ingest.add_argument(
        "--label-with",
        metavar="IDM_DIR",
        help="no key log: an inverse-dynamics model (`pocketworld idm train`, best on some of your own logged play) "
        "proposes each frame's keys; the shards are marked pseudo-labelled",
    )
    ingest.add_argument("--game", help="the game's name stored with the data (default: the file's name)")
    ingest.add_argument(
        "--fps",
        type=float,
        help="the recording's frame rate, 1 to 240 (default: the video's, else the log's, else 30 for PNG frames)",
    )
    ingest.add_argument(
        "--split",
        choices=("auto", "train", "val", "test"),
        default="auto",
        help="auto (default): every 10th chunk held out as val for the fine-tune; test: the whole recording is "
        "held out, for `pocketworld evaluate` (base vs fine-tune) and `idm train`; train or val: all of it so",
    )
    ingest.add_argument("--chunk", type=int, default=128, help="frames per shard sample (default: 128)")
    ingest.add_argument("--max-mb", type=int, default=4096, help="refuse inputs larger than this (default: 4096)")
    ingest.add_argument(
        "--max-minutes",
        type=float,
        default=60.0,
        help="refuse recordings longer than this many minutes at 30 FPS (default: 60)",
    )
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    finetune = commands.add_parser(
        "finetune",
        help="LoRA fine-tune a model's dynamics on your gameplay (QLoRA on CUDA)",
        description="Trains LoRA layers on the base model's dynamics through the training loop (progress bar, "
        "checkpoints, --resume), scores held-out clips with the base and the fine-tune, and writes OUT "
        "as a standard peft adapter with a model card and a loss curve; share it with pocketworld push. "
        "Targets: a tokens-family base's attention and Mamba projections (to_q, to_k, to_v, to_out, "
        "in_proj, out_proj); a frames-family base's FiLM blocks (conv1, conv2, film).",
    )
    finetune.add_argument(
        "--base",
        required=True,
        help="the model to adapt: a zoo variant (nano, tiny, base, large) "
        "or a model folder (config.json + model.safetensors)",
    )
    finetune.add_argument(
        "--data",
        required=True,
        help="shards from `pocketworld ingest`: a tokens-family base has "
        "them encoded with its tokenizer first, into the run folder "
        "(or takes token shards of it); a frames-family base reads "
        "them as they are",
    )
    finetune.add_argument("--out", help="a new folder for the adapter (default: finetunes/DATA's name)")
    finetune.add_argument(
        "--run-dir", help="working folder for tokens (tokens-family bases), checkpoints and metrics (default: OUT.run)"
    )
    finetune.add_argument("--rank", type=int, default=8, help="LoRA rank r (default: 8)")
    finetune.add_argument(
        "--alpha", type=float, default=16.0, help="LoRA alpha; updates scale by alpha/rank (default: 16)"
    )
    finetune.add_argument("--dropout", type=float, default=0.0, help="dropout on the LoRA branch (default: 0)")
    finetune.add_argument("--steps", type=int, default=300, help="optimizer steps (default: 300)")
    finetune.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    finetune.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="time budget for encoding + training: training stops with a checkpoint when it is "
        "spent, before --steps (default: 0, no budget)",
    )
    finetune.add_argument("--batch-size", type=int, default=4, help="clips per step (default: 4)")
    finetune.add_argument(
        "--clip-len",
        type=int,
        default=16,
        help="tokens-family bases: frames per clip (default: 16); a frames-family base's clips are "
        "its context frames + --unroll",
    )
    finetune.add_argument(
        "--unroll",
        type=int,
        default=3,
        help="frames-family bases: frames predicted per clip, each fed back as context, as the "
        "frames stage trains (default: 3)",
    )
    finetune.add_argument(
        "--context-noise",
        type=float,
        default=0.03,
        help="frames-family bases: max std of the noise on context frames (default: 0.03; 0.3, as nano learnt "
        "under, gives steadier free rollouts)",
    )
    finetune.add_argument(
        "--changed-weight",
        type=float,
        default=0.0,
        help="frames-family bases: extra loss weight of pixels that move (default: 0)",
    )
    finetune.add_argument(
        "--moving-weight",
        type=float,
        default=5.0,
        help="bases with a motion net: extra loss weight of squares that move (default: 5)",
    )
    finetune.add_argument(
        "--played",
        action="store_true",
        help="bases with a motion net: learn on clips played from the net's own moves, so that it learns to mend "
        "what its moves tore in free play (default: real frame pairs)",
    )
    finetune.add_argument(
        "--motion-crop",
        type=int,
        default=None,
        help="bases with a motion net: learn on crops of N small-frame pixels each way (a multiple of 4), each "
        "where the clip moves, instead of whole frames: cheaper steps that hold the moves (default: 16, or 0 with "
        "--played, which plays whole clips; 0: whole frames)",
    )
    finetune.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    finetune.add_argument(
        "--quantize",
        choices=("none", "8bit", "4bit"),
        default="none",
        help="hold the frozen base in 8 or 4 bits through bitsandbytes (QLoRA; CUDA only; default: none)",
    )
    finetune.add_argument("--game", help="the game's name on the card (default: the name stored in the shards)")
    finetune.add_argument(
        "--preview-frames",
        type=int,
        default=60,
        help="frames of the card's preview GIF, a clip of your play beside the fine-tune's dream of it under the "
        "same keys (default: 60; 0: none)",
    )
    finetune.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="ship the moving average of the adapter's weights with this decay rather than the last step's "
        "(default: 0.999; 0: the last step's)",
    )
    finetune.add_argument("--seed", type=int, default=0, help="seeds the LoRA init and the data order (default: 0)")
    finetune.add_argument("--resume", action="store_true", help="continue the fine-tune in the run folder")
    finetune.add_argument("--no-progress", action="store_true", help="no progress bars")
    finetune.set_defaults(func=cmd_finetune)

    push = commands.add_parser("push", help="share a fine-tuned adapter in a registry")
    push.add_argument(
        "adapter",
        metavar="ADAPTER_DIR",
        help="folder with adapter_model.safetensors + adapter_config.json (+ README.md card)",
    )
    push.add_argument("--repo", required=True, help="repo name, 'owner/name' or 'name' (your own namespace)")
    _registry_option(push)
    push.add_argument("--game", help="the game it learned; writes a card for a folder that has none")
    push.add_argument("--update", action="store_true", help="replace / add a revision to an existing repo of yours")
    push.add_argument("--private", action="store_true", help="hub only: make the new repo private")
    push.set_defaults(func=cmd_push)

    hub = commands.add_parser("hub", help="browse and download shared fine-tunes")
    actions = hub.add_subparsers(dest="hub_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list PocketWorld fine-tunes")
    _registry_option(listing)
    listing.add_argument("--search", help="only repos whose name contains this")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_hub_list)
    info = actions.add_parser("info", help="show one fine-tune's card metadata")
    info.add_argument("repo", metavar="NAME", help="owner/name")
    _registry_option(info)
    info.set_defaults(func=cmd_hub_info)
    pull = actions.add_parser("pull", help="download a fine-tune (checked before it is kept)")
    pull.add_argument("repo", metavar="NAME", help="owner/name")
    _registry_option(pull)
    pull.add_argument("--out", help="a new folder for it (default: ./NAME's last part)")
    pull.set_defaults(func=cmd_hub_pull)


def _registry_option(parser) -> None:
    parser.add_argument(
        "--registry",
        choices=("local", "hub"),
        default="local",
        help="local: a folder ($POCKETWORLD_REGISTRY or ~/.cache/pocketworld/registry), no account; "
        "hub: Hugging Face ($HF_ENDPOINT; token from HF_TOKEN or `huggingface-cli login`). "
        "Default: local",
    )


def cmd_ingest(args) -> int:
    from pathlib import Path

    from finetune.ingest import IngestConfig, ingest
    from finetune.sources import Limits

    for name in ("chunk", "max_mb", "max_minutes"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    limits = Limits(max_input_bytes=args.max_mb * 2**20, max_frames=round(args.max_minutes * 60 * 30))
    config = IngestConfig(
        game=args.game, fps=args.fps, chunk=args.chunk, split=args.split, idm=args.label_with, limits=limits
    )
    report = ingest(args.source, args.out, args.actions, config, progress=not args.no_progress)
    splits = ", ".join(f"{split} {frames}" for split, frames in sorted(report["split_frames"].items()))
    print(
        f"wrote {report['frames']} frames ({report['seconds']} s at {report['target_fps']} FPS) of "
        f"{', '.join(report['games'])} in {report['shards']} shard(s) to {args.out}; frames per split: {splits}"
        + (f"; keys proposed by the IDM {args.label_with} (pseudo-labelled)" if report["pseudo_labelled"] else "")
    )
    if "review" in report:
        out = Path(args.out)
        print(
            f"check the proposed keys in {out / report['review']['picture']}; to correct them, edit "
            f"{out / report['review']['keys']} and ingest the recording again with --actions"
        )
    return 0


def cmd_finetune(args) -> int:
    from pathlib import Path

    from finetune.lora import LoraSettings
    from finetune.train import MOTION_CROP, FinetuneConfig, finetune

    config = FinetuneConfig(
        base=args.base,
        data=args.data,
        out=args.out or str(Path("finetunes") / Path(args.data).resolve().name),
        run_dir=args.run_dir or "",
        lora=LoraSettings(rank=args.rank, alpha=args.alpha, dropout=args.dropout),
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        clip_len=args.clip_len,
        unroll=args.unroll,
        context_noise=args.context_noise,
        changed_weight=args.changed_weight,
        moving_weight=args.moving_weight,
        played=args.played,
        motion_crop=args.motion_crop if args.motion_crop is not None else (0 if args.played else MOTION_CROP),
        threads=args.threads,
        quantize=args.quantize,
        seed=args.seed,
        ema=args.ema,
        game=args.game,
        minutes=args.minutes,
        preview_frames=args.preview_frames,
        progress=not args.no_progress,
    )
    print(json.dumps(finetune(config, resume=args.resume), indent=2))
    return 0


def cmd_push(args) -> int:
    from finetune.registry import make_registry

    where = make_registry(args.registry).push(
        args.adapter,
        args.repo,
        game=args.game,
        update=args.update,
        **({"private": args.private} if args.registry == "hub" else {}),
    )
    print(f"pushed {args.adapter} to {where}")
    return 0


def cmd_hub_list(args) -> int:
    from finetune.registry import make_registry

    entries = make_registry(args.registry).list(search=args.search)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=2))
        return 0
    if not entries:
        print(f"no PocketWorld fine-tunes in the {args.registry} registry")
        return 0
    rows = [("repo", "game", "base model")] + [(e.repo, e.game or "?", e.base_model or "?") for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    return 0


def cmd_hub_info(args) -> int:
    from finetune.registry import make_registry

    entry = make_registry(args.registry).info(args.repo)
    print(json.dumps({**entry.to_dict(), "card": entry.card}, indent=2, default=str))
    return 0


def cmd_hub_pull(args) -> int:
    from finetune.registry import make_registry

    out = args.out or args.repo.split("/")[-1]
    path = make_registry(args.registry).pull(args.repo, out)
    print(f"pulled {args.repo} into {path}")
    return 0
