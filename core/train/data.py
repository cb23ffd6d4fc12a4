"""Training data: an index of shard samples and a replayable clip stream shared by all ranks.

Two shard formats are read, both WebDataset tars with one sample per recorded chunk:
gameplay shards (core/data/shards.py: frames.png, actions.npy, state.npy, meta.json) and
token shards (written once by the tokens stage: tokens.npy (T, 16, 16) uint16, actions.npy,
meta.json). The index reads only meta and array headers; a sample's arrays are read on demand
by byte offset into the tar.

The order of clips is a pure function of (seed, epoch): shuffle the samples, cut each into
clips at a random offset, shuffle the clips within a window of samples (WebDataset's
shardshuffle + buffer shuffle, made deterministic). The global stream is cut into global
micro-batches of batch x processes clips and rank r takes slice r of each, so a run's data
do not depend on the number of processes (2 processes x 2 clips see what 1 process x 4 sees)
and resuming is skipping the consumed clips, without decoding them.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.encoding import decode_frames
from core.data.shards import DATA_VERSION, list_shards, shard_is_complete

TOKENS_VERSION = 1
GAMEPLAY, TOKENS = "gameplay", "tokens"


class DataError(ValueError):
    """Training data that cannot be used: empty, of an unknown format version, or the wrong kind."""


@dataclass
class SampleRef:
    shard: Path
    key: str  # the sample's name in the tar (game-sSEED-fSTART)
    members: dict[str, tuple[int, int]]  # file extension -> (byte offset, size) inside the tar
    meta: dict
    length: int  # frames in the sample


def index_shards(sources: list[str], kind: str, split: str | None) -> list[SampleRef]:
    """Every sample of `split` (None: all splits) in the shards at `sources` (folders or .tar files), checking that
    each is of `kind` (gameplay or tokens) and of a format version this code reads."""
    if not sources:
        raise DataError("no data given: set data.train to shard folders (e.g. data.train=[shards/platformer])")
    refs = []
    for source in sources:
        for shard in list_shards(source):  # FileNotFoundError for a missing or empty folder
            if not shard_is_complete(shard):
                warnings.warn(f"skipping truncated shard {shard}", stacklevel=2)
                continue
            refs += [ref for ref in _index_shard(shard, kind) if split in (None, ref.meta.get("split", "train"))]
    return refs


def _index_shard(shard: Path, kind: str) -> list[SampleRef]:
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(shard, "r") as tar:
        for member in tar:
            if member.isfile():
                key, _, ext = Path(member.name).name.partition(".")
                samples.setdefault(key, {})[ext] = (member.offset_data, member.size)
    refs = []
    with open(shard, "rb") as handle:
        for key, members in samples.items():
            if "meta.json" not in members or "actions.npy" not in members:
                raise DataError(f"{shard}: sample {key} lacks meta.json or actions.npy: not a PocketWorld shard")
            meta = json.loads(_read(handle, members["meta.json"]))
            found = TOKENS if "tokens.npy" in members else GAMEPLAY
            if found != kind:
                hint = (
                    " Encode them first: pocketworld train tokens --config ..."
                    if kind == TOKENS
                    else " Point this stage at the gameplay shards the tokens were made from."
                )
                raise DataError(f"{shard} holds {found} shards but this stage reads {kind} shards.{hint}")
            version, supported = (
                (meta.get("tokens_version"), TOKENS_VERSION) if kind == TOKENS else (meta.get("version"), DATA_VERSION)
            )
            if version != supported:
                raise DataError(
                    f"{shard}: {kind} shard format version {version!r}, but this PocketWorld reads "
                    f"version {supported}; re-record or re-encode the data with this version"
                )
            length = len(np.load(io.BytesIO(_read(handle, members["actions.npy"])), allow_pickle=False))
            refs.append(SampleRef(shard, key, members, meta, length))
    return refs


def _read(handle, member: tuple[int, int]) -> bytes:
    handle.seek(member[0])
    return handle.read(member[1])


def load_sample(ref: SampleRef) -> dict[str, np.ndarray]:
    """The arrays of one sample: {"frames" (T, H, W, 3) uint8 | "tokens" (T, S) int64, "actions" (T,) int64}."""
    with open(ref.shard, "rb") as handle:
        actions = np.load(io.BytesIO(_read(handle, ref.members["actions.npy"])), allow_pickle=False)
        if "tokens.npy" in ref.members:
            tokens = np.load(io.BytesIO(_read(handle, ref.members["tokens.npy"])), allow_pickle=False)
            arrays = {"tokens": tokens.reshape(len(tokens), -1).astype(np.int64)}
        else:
            arrays = {"frames": decode_frames(_read(handle, ref.members["frames.png"]))}
    arrays["actions"] = actions.astype(np.int64)
    return arrays


def clip_order(
    lengths: list[int], clip_len: int, stride: int, window: int, seed: int, epoch: int = 0
) -> Iterator[tuple[int, int]]:
    """Endless (sample index, first frame) clips, epoch after epoch, the same for the same arguments."""
    if not any(length >= clip_len for length in lengths):
        raise DataError(f"no sample has {clip_len} frames (data.clip_len); the longest has {max(lengths, default=0)}")
    while True:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(lengths))
        for first in range(0, len(order), window):
            pool = []
            for sample in order[first : first + window]:
                last = lengths[sample] - clip_len
                if last >= 0:
                    offset = int(rng.integers(min(stride, last + 1)))
                    pool += [(int(sample), start) for start in range(offset, last + 1, stride)]
            for index in rng.permutation(len(pool)):
                yield pool[index]
        epoch += 1


class ClipBatches:
    """This rank's micro-batches of the global clip stream: dicts of (B, L, ...) tensors."""

    def __init__(
        self,
        refs: list[SampleRef],
        clip_len: int,
        stride: int,
        window: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.refs, self.clip_len, self.batch_size = refs, clip_len, batch_size
        self.rank, self.world_size = rank, world_size
        self.order = clip_order([r.length for r in refs], clip_len, stride, window, seed)
        self.consumed = 0  # clips of the global stream taken so far (the data position)
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._cache_size = 2 * window

    def skip(self, clips: int) -> None:
        """Advance past `clips` clips of the global stream without reading them (for --resume; counting
        clips, not batches, lets a run resume with another number of processes)."""
        for _ in range(clips):
            next(self.order)
        self.consumed += clips

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        clips = [next(self.order) for _ in range(self.batch_size * self.world_size)]
        mine = clips[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        self.consumed += len(clips)
        return collate([self._clip(sample, start) for sample, start in mine])

    def _clip(self, sample: int, start: int) -> dict[str, np.ndarray]:
        if sample not in self._cache:
            self._cache[sample] = load_sample(self.refs[sample])
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(sample)
        return {k: v[start : start + self.clip_len] for k, v in self._cache[sample].items()}


def validation_batches(
    refs: list[SampleRef], clip_len: int, clips: int, batch_size: int, rank: int = 0, world_size: int = 1
) -> list[dict[str, torch.Tensor]]:
    """`clips` of the non-overlapping clips of the validation samples, evenly spaced over all of them (so every
    game and level of a validation set has its share, not only its first sample), dealt round-robin to ranks."""
    candidates = [(r, start) for r in refs for start in range(0, r.length - clip_len + 1, clip_len)]
    chosen = candidates[:: max(1, len(candidates) // clips)][:clips] if clips > 0 else []
    mine = chosen[rank::world_size]
    items, arrays, current = [], None, None
    for ref, start in mine:  # in sample order: each sample is read once, and only its clips are kept
        if ref is not current:
            arrays, current = load_sample(ref), ref
        items.append({k: v[start : start + clip_len].copy() for k, v in arrays.items()})
    return [collate(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([item[k] for item in items])) for k in items[0]}
