"""Training: every stage of a PocketWorld model on one shared Accelerate loop (core/train/loop.py).

Stages, in order: tokenizer -> tokens (encode the shards once) -> dynamics -> decoder ->
long_horizon; distill trains a dynamics from a teacher instead. `run_stage` is what
`pocketworld train STAGE` calls.
"""

from __future__ import annotations

import importlib

from core.train.config import STAGES, RunConfig


def run_stage(config: RunConfig, resume: bool = False) -> dict:
    """Run the stage named by config.stage; returns its summary."""
    if config.stage == "tokens":
        from core.train.tokens import encode_shards

        return encode_shards(config)
    from core.train.loop import train

    stage = importlib.import_module(f"core.train.{config.stage}").STAGE
    return train(config, stage, resume=resume)


__all__ = ["STAGES", "RunConfig", "run_stage"]
