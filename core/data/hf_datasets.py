"""The same shards through Hugging Face `datasets` (`load_dataset("webdataset", ...)`), for those who
work with gameplay as a `datasets` Dataset; training reads shards with core.train.data.ClipBatches.

Needs the `datasets` extra (`pip install 'pocketworld[datasets]'`).

Locally or streamed, a shard folder loads as a dataset with columns "frames.png" (an Image of
the stacked frames), "actions.npy", "state.npy" and "meta.json"; `to_arrays` turns a row back
into the arrays of a shard's sample. Truncated shards are left out with a warning first,
because `datasets` would stop at them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from core.data.encoding import decode_frames
from core.data.shards import SPLITS, list_shards, shard_is_complete


def load_gameplay(source: str | Path, split: str = "train", streaming: bool = False, cache_dir: str | None = None):
    """A `datasets` Dataset (or IterableDataset when streaming) of the samples of one split."""
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "reading shards as a Hugging Face dataset needs `datasets`: pip install 'pocketworld[datasets]'"
        ) from None

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    files = []
    for shard in list_shards(source):
        if shard_is_complete(shard):
            files.append(str(shard))
        else:
            warnings.warn(f"skipping truncated shard {shard} (it does not end like a complete tar)", stacklevel=2)
    if not files:
        raise FileNotFoundError(f"no complete shards in {source}")
    dataset = datasets.load_dataset(
        "webdataset", data_files={"shards": files}, split="shards", streaming=streaming, cache_dir=cache_dir
    )
    return dataset.filter(lambda meta: meta["split"] == split, input_columns="meta.json")


def to_arrays(row: dict) -> dict:
    """A row from load_gameplay -> {"frames": (T, 256, 256, 3) uint8, "actions": (T,) int64, "state": (T, D),
    "meta"}."""
    return {
        "frames": decode_frames(row["frames.png"]),
        "actions": np.asarray(row["actions.npy"], dtype=np.int64),
        "state": np.asarray(row["state.npy"], dtype=np.float32).reshape(len(row["actions.npy"]), -1),
        "meta": row["meta.json"],
    }
