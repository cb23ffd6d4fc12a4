"""`pocketworld sprites`: give a model a sprite memory of what keys make appear in recorded play."""

from __future__ import annotations

from pathlib import Path


def register(commands, benches) -> None:
    sprites = commands.add_parser(
        "sprites",
        help="give a model played by objects a sprite memory (what keys make appear: a sword, a bullet) from play",
        description="Reads consecutive frames of the train split of each --data folder, keeps the sprites that "
        "appear after some keys more than after others (core/sprite_memory.py), an equal share of --count from "
        "each folder, and writes MODEL with that memory to --out.",
    )
    sprites.add_argument("model", help="a frames-family model folder or zoo variant whose motion net plays by objects")
    sprites.add_argument("--data", nargs="+", required=True, help="shard folders of recorded play (e.g. one per game)")
    sprites.add_argument("--out", required=True, help="the model folder to write (must not exist yet)")
    sprites.add_argument("--count", type=int, default=96, help="sprites the memory holds (default: 96)")
    sprites.add_argument(
        "--transitions", type=int, default=2000, help="consecutive frame pairs read from each folder (default: 2000)"
    )
    sprites.add_argument(
        "--appear",
        type=float,
        default=0.8,
        help="the motion net's redraw probability over which play puts a sprite down (default: 0.8)",
    )
    sprites.add_argument("--no-progress", action="store_true", help="no progress bar")
    sprites.set_defaults(func=run_sprites)


def run_sprites(args) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from core.atomic import staged_folder
    from core.cli import UsageError
    from core.data.shards import list_shards, read_shard
    from core.sprite_memory import SpriteMemory, collect_sprites
    from core.world_model import WorldModel
    from core.zoo import model_dir

    folder = model_dir(args.model)
    model = WorldModel.from_pretrained(folder)
    motion = getattr(model.dynamics, "motion", None)
    if motion is None or motion.config.decode != "objects":
        raise UsageError(f"{args.model}: only a frames-family model whose motion net plays by objects has sprites")
    if args.count < 1 or args.transitions < 1:
        raise UsageError(f"--count and --transitions must be >= 1, got {args.count} and {args.transitions}")
    if not 0 < args.appear < 1:
        raise UsageError(f"--appear is a probability between 0 and 1, got {args.appear}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} exists and is not empty: name a new folder")
    shares = [args.count // len(args.data) + (i < args.count % len(args.data)) for i in range(len(args.data))]
    if min(shares) < 1:
        raise UsageError(f"--count {args.count} is fewer than the {len(args.data)} --data folders")
    for source in args.data:
        if not list_shards(source):
            raise FileNotFoundError(f"--data {source}: no shards there")

    def transitions(source: str, bar):
        read = 0
        for shard in list_shards(source):
            for sample in read_shard(shard):
                if sample.meta["split"] != "train":
                    continue
                for t in range(len(sample.frames) - 1):
                    yield sample.frames[t], sample.frames[t + 1], int(sample.actions[t])
                    bar.update(1)
                    read += 1
                    if read == args.transitions:
                        return

    # the loaded model is given its memory in place: its config and its motion net grow the part together
    config = motion.config
    config.sprites, config.appear = args.count, args.appear
    patches, keys, found = [], [], []
    with tqdm(total=args.transitions * len(args.data), unit="pair", disable=args.no_progress) as bar:
        for source, share in zip(args.data, shares):
            bank, lifts, distinct = collect_sprites(transitions(source, bar), share, config.sprite_size, config.radius)
            patches.append(bank)
            keys.append(lifts)
            found.append(f"{source}: {int((bank[..., 3] > 0).any((1, 2)).sum())} of {distinct} kept")
    motion.sprites = SpriteMemory(config.sprites, config.sprite_size)
    motion.sprites.patches.copy_(torch.from_numpy(np.concatenate(patches)))
    motion.sprites.keys.copy_(torch.from_numpy(np.concatenate(keys)))
    with staged_folder(out) as staging:
        model.save_pretrained(staging)
    print("\n".join(found))
    print(f"wrote {out}: {args.model} with a memory of {args.count} sprites")
    return 0
