"""WebDataset shards of gameplay: the sample format, an atomic shard writer, and a safe reader.

A shard is a plain tar (WebDataset's format) of samples, one per episode chunk:

    {key}.frames.png   T frames stacked vertically: a (T*256, 256) RGB PNG (lossless; chosen by
                       measurement, see core/data/encoding.py and `pocketworld bench encoding`)
    {key}.actions.npy  (T,) uint8 action ids 0..17: actions[t] was pressed at frame t and led
                       to frame t+1 (the last one leads to the next chunk's first frame, or is a
                       NOOP pad when meta["ends_episode"])
    {key}.state.npy    (T, D) float32 ground-truth state after each frame's step (D = 0 when the
                       game has none); meta["state_layout"] names its fields
    {key}.meta.json    game, seed, agent, fps, version, split, start_frame, ends_episode, ...

Shards are written as `.tar.partial` and renamed when complete, so a killed collection leaves
only whole shards; readers ignore partial files and skip (with a warning naming it) a shard
that is truncated or corrupt rather than crash mid-epoch.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.encoding import decode_frames, encode_frames

DATA_VERSION = 1
SPLITS = ("train", "val", "test", "unseen")  # unseen: games held out of training entirely


def split_of(seed: int) -> str:
    """The split a level seed belongs to: 90% train, 5% val, 5% test, fixed forever by the seed."""
    bucket = (seed * 2654435761) % 2**32 % 100  # Knuth's multiplicative hash: neighbours spread out
    return "train" if bucket < 90 else "val" if bucket < 95 else "test"


@dataclass
class Sample:
    """One episode chunk: frames (T, 256, 256, 3) uint8, actions (T,) int, state (T, D) float32, meta."""

    frames: np.ndarray
    actions: np.ndarray
    state: np.ndarray
    meta: dict

    def key(self) -> str:
        game = re.sub(r"[^A-Za-z0-9_-]", "_", self.meta["game"])
        return f"{game}-s{self.meta['seed']}-f{self.meta['start_frame']}"


def encode_sample(sample: Sample) -> dict[str, bytes]:
    """Sample -> {file extension: bytes} for the tar."""
    assert len(sample.frames) == len(sample.actions) == len(sample.state), "per-frame arrays disagree in length"
    return {
        "frames.png": encode_frames(sample.frames),
        "actions.npy": _npy(np.asarray(sample.actions, dtype=np.uint8)),
        "state.npy": _npy(np.asarray(sample.state, dtype=np.float32)),
        "meta.json": json.dumps(sample.meta, sort_keys=True).encode(),
    }


def decode_sample(files: dict[str, bytes]) -> Sample:
    """{file extension: bytes} -> Sample; raises ValueError if a part is missing or unreadable."""
    missing = {"frames.png", "actions.npy", "state.npy", "meta.json"} - set(files)
    if missing:
        raise ValueError(f"sample lacks {', '.join(sorted(missing))}")
    meta = json.loads(files["meta.json"])
    frames = decode_frames(files["frames.png"])
    actions = np.load(io.BytesIO(files["actions.npy"]), allow_pickle=False)
    state = np.load(io.BytesIO(files["state.npy"]), allow_pickle=False)
    if not len(frames) == len(actions) == len(state):
        raise ValueError(f"sample has {len(frames)} frames, {len(actions)} actions and {len(state)} states")
    return Sample(frames, actions, state, meta)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class ShardWriter:
    """Writes samples into `shard-NNNNNN.tar` files of about `max_bytes` each, atomically."""

    def __init__(self, out_dir: str | Path, start_index: int = 0, max_bytes: int = 256 * 2**20, on_close=None):
        self.out_dir, self.index, self.max_bytes = Path(out_dir), start_index, max_bytes
        self.on_close = on_close  # called with the finished shard's path (e.g. to save resume state)
        self.tar, self.size, self.samples = None, 0, 0
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, sample: Sample) -> None:
        if self.tar is None:
            self.partial = self.out_dir / f"shard-{self.index:06d}.tar.partial"
            self.tar = tarfile.open(self.partial, "w", format=tarfile.USTAR_FORMAT)
        key = sample.key()
        for ext, data in encode_sample(sample).items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed mtime: same data, same bytes
            self.tar.addfile(info, io.BytesIO(data))
            self.size += len(data) + 1024
        self.samples += 1
        if self.size >= self.max_bytes:
            self.close()

    def close(self) -> None:
        """Finish the current shard (if any) and move it into place."""
        if self.tar is None:
            return
        self.tar.close()
        with open(self.partial, "rb+") as handle:
            os.fsync(handle.fileno())
        final = self.partial.with_suffix("")  # drop ".partial"
        os.replace(self.partial, final)
        self.tar, self.size, self.samples = None, 0, 0
        self.index += 1
        if self.on_close:
            self.on_close(final)


def list_shards(path: str | Path) -> list[Path]:
    """The complete shards at `path`: a .tar file, or every shard-*.tar in a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
        if not shards:
            raise FileNotFoundError(f"no .tar shards in {path}")
        return shards
    raise FileNotFoundError(f"no shard or folder at {path}")


def shard_is_complete(path: Path) -> bool:
    """A tar ends with at least two zero 512-byte blocks; a truncated copy almost never does."""
    size = path.stat().st_size
    if size < 1024 or size % 512:
        return False
    with open(path, "rb") as handle:
        handle.seek(size - 1024)
        return handle.read(1024) == bytes(1024)


def read_shard(path: str | Path):
    """Yield the Samples of one shard; a truncated or corrupt shard ends early with a warning naming it."""
    path = Path(path)
    if not shard_is_complete(path):
        warnings.warn(f"skipping truncated shard {path} (it does not end like a complete tar)", stacklevel=2)
        return
    try:
        with tarfile.open(path, "r") as tar:
            key, files = None, {}
            for member in tar:
                if not member.isfile():
                    continue
                name = os.path.basename(member.name)
                member_key, _, ext = name.partition(".")
                if member_key != key and files:
                    yield decode_sample(files)
                    files = {}
                key = member_key
                files[ext] = tar.extractfile(member).read()
            if files:
                yield decode_sample(files)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as err:
        warnings.warn(f"skipping the rest of corrupt shard {path}: {err}", stacklevel=2)
