"""Small synthetic training data for the training tests: a saved tiny model, token shards
encoded "by" its tokenizer (sprite-toy tokens), and gameplay shards of synthetic frames."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from core.data.shards import DATA_VERSION, Sample, ShardWriter
from core.train.data import TOKENS_VERSION
from core.train.tokens import tokenizer_fingerprint
from core.world_model import WorldModel
from tests.conftest import tiny_config
from tests.synthetic import sprite_frames
from tests.toy import sprite_clips


def save_tiny_model(folder: Path, seed: int = 0, **dynamics) -> WorldModel:
    torch.manual_seed(seed)
    model = WorldModel(tiny_config(**dynamics))
    model.save_pretrained(folder)
    return model


def write_token_shards(
    folder: Path,
    model: WorldModel,
    samples: int = 6,
    frames: int = 16,
    val_samples: int = 2,
    version: int = TOKENS_VERSION,
    seed: int = 0,
    game: str = "toy",
    **toy,
) -> Path:
    """Sprite-toy token clips (16x16 grid; `toy`: sprite_clips' variant options) in one token shard,
    marked as made by `model`'s tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens, actions = sprite_clips(
        samples + val_samples, frames, grid=16, generator=torch.Generator().manual_seed(seed), **toy
    )
    fingerprint = tokenizer_fingerprint(model.tokenizer)
    with tarfile.open(folder / "shard-000000.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(samples + val_samples):
            meta = {
                "game": game,
                "seed": i,
                "start_frame": 0,
                "split": "train" if i < samples else "val",
                "tokens_version": version,
                "tokenizer": fingerprint,
                "version": DATA_VERSION,
            }
            files = {
                "tokens.npy": _npy(tokens[i].numpy().astype(np.uint16).reshape(frames, 16, 16)),
                "actions.npy": _npy(actions[i].numpy().astype(np.uint8)),
                "meta.json": json.dumps(meta).encode(),
            }
            for ext, data in files.items():
                info = tarfile.TarInfo(f"toy-s{i}-f0.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return folder


def write_gameplay_shards(folder: Path, samples: int = 2, frames: int = 6, split: str = "train") -> Path:
    writer = ShardWriter(folder)
    for i in range(samples):
        meta = {"game": "synthetic", "seed": i, "split": split, "start_frame": 0, "fps": 30, "version": DATA_VERSION}
        writer.write(
            Sample(sprite_frames(frames, seed=i), np.arange(frames) % 18, np.zeros((frames, 0), np.float32), meta)
        )
    writer.close()
    return folder


def run_overrides(tmp: Path, model_dir: Path, data: Path, out: str, steps: int = 4, **extra) -> list[str]:
    """Overrides for a quick tiny dynamics-family run: no progress bar, no TensorBoard."""
    values = {
        "out": str(tmp / out),
        "model.init": str(model_dir),
        "data.train": f"[{data}]",
        "data.clip_len": 6,
        "data.stride": 5,
        "data.shuffle_window": 2,
        "data.val_clips": 2,
        "train.steps": steps,
        "train.batch_size": 2,
        "optim.warmup_steps": 1,
        "optim.lr": 3e-3,
        "log.every": 1,
        "log.val_every": 0,
        "log.save_every": 2,
        "log.progress": "false",
        "log.tensorboard": "false",
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
