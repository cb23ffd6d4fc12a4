"""Tokens stage: encode gameplay shards once into token shards, so dynamics training never
re-runs the encoder (as IRIS and Genie train their dynamics on pre-computed tokens).

A token shard is a WebDataset tar with one sample per gameplay sample (every split kept):
`{key}.tokens.npy` (T, 16, 16) uint16, `{key}.actions.npy` (T,) uint8, `{key}.meta.json` (the
gameplay meta plus `tokens_version` and the `tokenizer` fingerprint, which the dynamics stage
checks against its model). The folder is written as OUT.partial and renamed when complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.config import ConfigError
from core.frames import to_model
from core.tokenizer import Tokenizer
from core.train.checkpoint import atomic_write_text
from core.train.config import RunConfig
from core.train.data import GAMEPLAY, TOKENS_VERSION, index_shards, load_sample


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """A short hash of the tokenizer's weights: token shards remember which tokenizer made them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def encode_shards(config: RunConfig) -> dict:
    """Encode every sample of config.data.train with model.init's tokenizer into config.tokens.out."""
    from core.train.loop import build_model

    if not config.model.init:
        raise ConfigError(
            "the tokens stage needs a trained tokenizer: set model.init to the tokenizer run's "
            "model folder (e.g. model.init=runs/nano-tokenizer/model)"
        )
    if not config.tokens.out:
        raise ConfigError("set tokens.out to a new folder for the token shards")
    out = Path(config.tokens.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new tokens.out (nothing was overwritten)")
    refs = index_shards(config.data.train, GAMEPLAY, split=None)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = "cuda" if torch.cuda.is_available() and not config.train.cpu else "cpu"
    tokenizer = build_model(config).tokenizer.to(device).eval()
    fingerprint = tokenizer_fingerprint(tokenizer)

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started, frames, shard_index, shard_bytes, tar = time.monotonic(), 0, 0, 0, None
    for ref in tqdm(refs, desc="encode", unit="sample", disable=not config.log.progress):
        arrays = load_sample(ref)
        ids = []
        with torch.inference_mode():
            for first in range(0, len(arrays["frames"]), config.tokens.batch_size):
                chunk = np.array(arrays["frames"][first : first + config.tokens.batch_size])  # writable for torch
                ids.append(tokenizer.encode(to_model(chunk, device)).cpu())  # (n, 16, 16)
        tokens = torch.cat(ids).numpy().astype(np.uint16)
        meta = {**ref.meta, "tokens_version": TOKENS_VERSION, "tokenizer": fingerprint, "source_shard": ref.shard.name}
        files = {
            "tokens.npy": _npy(tokens),
            "actions.npy": _npy(arrays["actions"].astype(np.uint8)),
            "meta.json": json.dumps(meta, sort_keys=True).encode(),
        }
        if tar is None:
            tar = tarfile.open(partial / f"shard-{shard_index:06d}.tar", "w", format=tarfile.USTAR_FORMAT)
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{ref.key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
            shard_bytes += len(data) + 1024
        frames += len(tokens)
        if shard_bytes >= config.tokens.shard_mb * 2**20:
            tar.close()
            tar, shard_index, shard_bytes = None, shard_index + 1, 0
    if tar is not None:
        tar.close()
    seconds = time.monotonic() - started
    summary = {
        "tokenizer": fingerprint,
        "model": config.model.init,
        "samples": len(refs),
        "frames": frames,
        "seconds": round(seconds, 2),
        "frames_per_second": round(frames / max(seconds, 1e-9), 1),
        "sources": config.data.train,
    }
    atomic_write_text(partial / "tokens.json", json.dumps(summary, indent=2))
    if out.exists():
        out.rmdir()  # empty (checked above)
    partial.rename(out)
    return {**summary, "out": str(out)}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
