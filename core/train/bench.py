"""`pocketworld bench train`: training throughput (frames/s) and peak memory of one stage.

Times full optimizer steps (forward, backward, AdamW) of the stage's objective on synthetic
batches of the variant's real shapes, after one untimed warm-up step; data loading is
excluded (it is measured by `bench encoding`). Peak memory is the process's peak resident
set on CPU (everything the process holds, weights and Python included) and the peak of
allocated tensors on CUDA.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from core.config import zoo_config
from core.train.config import STAGES
from core.world_model import WorldModel

TOKENS_STAGES = tuple(stage for stage in STAGES if stage != "frames")  # "frames" trains all of a frames model


def default_stage(variant: str) -> str:
    """The stage `bench train` times for a zoo variant when none is named: its family's main one."""
    return "frames" if zoo_config(variant).family == "frames" else "dynamics"


def _objective(stage: str, model: WorldModel):
    if stage == "frames":
        from core.train.config import FramesSection
        from core.train.frames import FramesObjective

        return FramesObjective(model, FramesSection())
    from core.distill import DistillObjective
    from core.train.config import DistillSection
    from core.train.decoder import DecoderObjective
    from core.train.dynamics import DynamicsObjective
    from core.train.long_horizon import SelfForcingObjective
    from core.train.tokenizer import TokenizerObjective

    if stage == "tokenizer":
        return TokenizerObjective(model.tokenizer)
    if stage == "decoder":
        return DecoderObjective(model.decoder, model.tokenizer)
    if stage == "dynamics":
        return DynamicsObjective(model.dynamics)
    if stage == "long_horizon":
        objective = SelfForcingObjective(model.dynamics, passes=2, temperature=1.0)
        objective.mix = 0.5
        return objective
    teacher = WorldModel(model.config).dynamics  # distill: a same-size teacher (a larger one costs more)
    return DistillObjective(model.dynamics, teacher, DistillSection())


def bench_train(
    stage: str,
    variant: str = "nano",
    batch_size: int = 2,
    clip_len: int | None = None,
    steps: int = 3,
    threads: int = 0,
) -> dict:
    """-> {"stage", "variant", "batch", "clip_len", "frames_per_second", "seconds_per_step", "peak_memory_mb", ...}."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    config = zoo_config(variant)
    family = config.family
    if (stage == "frames") != (family == "frames"):
        raise ValueError(
            f"{variant} is the {family} family: its stages are "
            + ("frames" if family == "frames" else ", ".join(TOKENS_STAGES))
        )
    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = WorldModel(config).to(device)
    size = model.config.image_size
    # frames: the 6-frame clips configs/nano-v2 trains on
    default_len = {"tokenizer": 1, "tokens": 1, "decoder": 2, "frames": 6}.get(stage, 32)
    clip_len = clip_len or default_len
    frames = torch.randint(0, 256, (batch_size, clip_len, size, size, 3), dtype=torch.uint8, device=device)
    batch = {"frames": frames, "actions": torch.randint(0, 18, (batch_size, clip_len), device=device)}
    if family == "tokens":
        vocab, per_frame = model.config.dynamics.vocab_size, model.config.dynamics.tokens_per_frame
        batch["tokens"] = torch.randint(0, vocab, (batch_size, clip_len, per_frame), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if stage == "tokens":
        from core.frames import to_model

        def run_step():
            with torch.inference_mode():
                model.tokenizer.encode(to_model(frames))
    else:
        objective = _objective(stage, model).to(device)
        optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-4)
        if hasattr(objective, "frozen"):
            for module in objective.frozen.values():
                module.to(device)

        def run_step():
            loss, _ = objective(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    run_step()  # warm-up: allocations, kernel selection
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        run_step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    frames_per_step = batch_size * (clip_len - 1 if stage in ("decoder",) else clip_len)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is KiB on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return {
        "stage": stage,
        "variant": variant,
        "device": device,
        "threads": torch.get_num_threads(),
        "batch": batch_size,
        "clip_len": clip_len,
        "seconds_per_step": round(seconds, 3),
        "frames_per_second": round(frames_per_step / seconds, 2),
        "peak_memory_mb": round(peak),
    }
