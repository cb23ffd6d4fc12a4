"""Training reader: a torch IterableDataset of fixed-length clips cut from gameplay shards.

Shards are shuffled per epoch and dealt out across distributed ranks and DataLoader workers
(each shard is read by exactly one worker), clips are cut from every sample at a stride (with
a random offset per sample when shuffling) and mixed in a shuffle buffer, as WebDataset's
shardshuffle + shuffle do. A truncated shard is skipped with a warning naming it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from core.data.shards import SPLITS, list_shards, read_shard


class ClipDataset(IterableDataset):
    """Yields {"frames": uint8 (L, 256, 256, 3), "actions": int64 (L,), "state": float32 (L, D),
    "game": str, "seed": int, "start_frame": int}; actions[t] was pressed at frames[t] and led to
    frames[t+1] (the last one leads out of the clip)."""

    def __init__(
        self,
        source: str | Path | list,
        clip_len: int = 32,
        stride: int | None = None,
        splits: tuple[str, ...] = ("train",),
        shuffle: bool = True,
        buffer: int = 256,
        seed: int = 0,
        with_state: bool = True,
    ):
        sources = source if isinstance(source, (list, tuple)) else [source]
        self.shards = sorted({shard for item in sources for shard in list_shards(item)})
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {', '.join(sorted(unknown))}; valid splits: {', '.join(SPLITS)}")
        if clip_len <= 0 or (stride is not None and stride <= 0) or buffer <= 0:
            raise ValueError(f"clip_len, stride and buffer must be positive, got {clip_len}, {stride}, {buffer}")
        self.clip_len, self.stride = clip_len, stride or clip_len
        self.splits, self.shuffle, self.buffer, self.seed = tuple(splits), shuffle, buffer, seed
        self.with_state = with_state  # state widths differ between games: turn off to batch mixed games
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently next epoch (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def _my_shards(self) -> list[Path]:
        shards = list(self.shards)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(shards)  # same order in every rank and worker
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shards = shards[torch.distributed.get_rank() :: torch.distributed.get_world_size()]
        worker = get_worker_info()
        return shards[worker.id :: worker.num_workers] if worker else shards

    def _clips(self, rng: random.Random):
        for shard in self._my_shards():
            for sample in read_shard(shard):
                if sample.meta["split"] not in self.splits or len(sample.frames) < self.clip_len:
                    continue
                last = len(sample.frames) - self.clip_len
                offset = rng.randrange(min(self.stride, last + 1)) if self.shuffle else 0
                for start in range(offset, last + 1, self.stride):
                    clip = slice(start, start + self.clip_len)
                    item = {
                        "frames": torch.from_numpy(sample.frames[clip].copy()),
                        "actions": torch.from_numpy(sample.actions[clip].astype(np.int64)),
                        "game": sample.meta["game"],
                        "seed": sample.meta["seed"],
                        "start_frame": sample.meta["start_frame"] + start,
                    }
                    if self.with_state:
                        item["state"] = torch.from_numpy(sample.state[clip].astype(np.float32))
                    yield item

    def __iter__(self):
        worker = get_worker_info()
        rng = random.Random(hash((self.seed, self.epoch, worker.id if worker else 0)))
        if not self.shuffle:
            yield from self._clips(rng)
            return
        pool = []
        for item in self._clips(rng):
            if len(pool) < self.buffer:
                pool.append(item)
                continue
            index = rng.randrange(len(pool))
            pool[index], item = item, pool[index]
            yield item
        rng.shuffle(pool)
        yield from pool
