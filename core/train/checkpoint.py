"""Atomic, resumable training checkpoints: weights, optimizer, EMA, RNG and data position.

Everything is safetensors + JSON (nothing is pickled, so a checkpoint from elsewhere cannot
run code when loaded). A checkpoint is a folder `checkpoints/step-NNNNNNN/` that is written as
`.step-NNNNNNN.partial/` by every rank (each rank its own RNG file) and renamed by the main
process once all ranks are done, so a killed run leaves only complete checkpoints; `latest`
is the highest complete step. The learning-rate schedule is a pure function of the step
(core/train/loop.py), so the step *is* the scheduler's state; the data position is the
number of clips of the global stream consumed (core/train/data.py makes it replayable).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from core.atomic import atomic_write
from core.world_model import WeightsError

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot resume this run (another config or variant, or damaged)."""


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    steps = sorted((run_dir / CHECKPOINTS).glob("step-*")) if (run_dir / CHECKPOINTS).is_dir() else []
    complete = [p for p in steps if (p / STATE_FILE).is_file()]
    return complete[-1] if complete else None


def save_checkpoint(run_dir: Path, accelerator, step: int, model: torch.nn.Module, optimizer, ema, extra: dict) -> Path:
    """Write a checkpoint of `step` from every rank; returns its folder. `extra` goes into state.json."""
    root = run_dir / CHECKPOINTS
    final = root / f"step-{step:07d}"
    partial = root / f".step-{step:07d}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    rank = accelerator.process_index
    save_file(_rng_tensors(), str(partial / f"rng-rank{rank}.safetensors"))
    # every rank records a checksum of its weights: DDP keeps them identical, and a checkpoint shows it
    checksum = sum(float(v.double().sum()) for v in model.state_dict().values() if v.is_floating_point())
    (partial / f"rng-rank{rank}.json").write_text(json.dumps({**_rng_json(), "weights_checksum": checksum}))
    if accelerator.is_main_process:
        save_file(_contiguous(model.state_dict()), str(partial / "model.safetensors"))
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, str(partial / "optimizer.safetensors"))
        if ema is not None:
            save_file(_contiguous(ema.state_dict()), str(partial / "ema.safetensors"))
        state = {"step": step, "world_size": accelerator.num_processes, "param_groups": groups, **extra}
        (partial / STATE_FILE).write_text(json.dumps(state, indent=1))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)  # only when re-saving the same step after a resume
        partial.rename(final)
        complete = sorted(p for p in root.glob("step-*") if (p / STATE_FILE).is_file())
        keep = extra.get("keep", 2)
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(folder: Path, accelerator, model: torch.nn.Module, optimizer, ema) -> dict:
    """Restore weights, optimizer, EMA and this rank's RNG from `folder`; returns state.json."""
    state = json.loads((folder / STATE_FILE).read_text())
    load_strict(model, folder / "model.safetensors")
    optimizer.load_state_dict(
        _unflatten_optimizer(load_file(str(folder / "optimizer.safetensors")), state["param_groups"])
    )
    if ema is not None:
        ema_file = folder / "ema.safetensors"
        if not ema_file.is_file():
            raise CheckpointError(f"{folder} has no EMA weights but train.ema_decay is on")
        ema.load_state_dict(load_file(str(ema_file)))
    rank = accelerator.process_index
    rng_file = folder / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():
        _set_rng(load_file(str(rng_file)), json.loads((folder / f"rng-rank{rank}.json").read_text()))
    else:  # resumed with more processes than saved: this rank's randomness starts fresh
        accelerator.print(f"note: {folder} has no RNG state for rank {rank}; it starts from the seed")
    return state


def load_strict(model: torch.nn.Module, path: Path) -> None:
    """Load a safetensors state dict; any missing, unexpected or reshaped tensor is a CheckpointError."""
    tensors = load_file(str(path))
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    wrong = [k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path} was written by another model config or variant: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, other shapes {sorted(wrong)[:3]}. Resume with the config that made it, "
            "or train into a new run folder."
        )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"{path}: {err}") from None


def _contiguous(tensors: dict) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], list]:
    """torch optimizer state -> ({"state/i/name": tensor}, JSON-able param groups + scalar states)."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}/{name}"] = value
    return tensors, {"groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, groups: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split("/", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in groups["scalars"].items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups["groups"]}


def _rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    return tensors


def _rng_json() -> dict:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def _set_rng(tensors: dict, data: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
