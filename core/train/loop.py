"""The one training loop every stage runs, on Accelerate: one CPU process, several, or GPUs.

A stage (core/train/tokenizer.py, dynamics.py, ...) supplies an *objective*: an nn.Module
holding the parts it trains whose forward(batch) returns (loss, metrics). This loop owns the
rest, the way Hugging Face's example scripts do with `accelerate`: seeding, the optimizer and
its warmup+decay schedule, gradient accumulation (no DDP sync until the last micro-batch),
clipping, EMA, a NaN guard, metrics to JSONL + TensorBoard, periodic validation and samples,
atomic checkpoints, `--resume`, a time limit for chunked background runs, and at the end the
whole WorldModel exported to RUN/model (config.json + model.safetensors).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from core.config import ConfigError
from core.frame_motion import SCORES_LAYER, widen_moves
from core.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from core.train.config import RunConfig, config_differences, flatten, load_run_config, save_run_config
from core.train.data import ClipBatches, index_shards, validation_batches
from core.train.metrics import MetricsLog
from core.train.optim import EMA, build_optimizer, lr_at
from core.world_model import WorldModel

CONFIG_FILE = "config.yaml"


class TrainingDiverged(RuntimeError):
    """The loss or gradient became NaN/inf: the run stopped before the bad update."""


class Stage:
    """What a stage gives the loop. Subclasses set `data_kind` and build `self.objective`."""

    data_kind = "gameplay"  # which shards it reads (core.train.data.GAMEPLAY or TOKENS)
    val_metrics: tuple[str, ...] = ()  # names of the validation metrics, in a fixed order

    def __init__(self, config: RunConfig, model: WorldModel):
        self.config, self.model = config, model
        self.objective: torch.nn.Module

    def check_data(self, refs) -> None:
        """Raise if the indexed samples cannot train this model (e.g. tokens of another tokenizer)."""

    def to(self, device) -> None:
        """Move parts the objective does not own (frozen tokenizer, teacher) to `device`."""

    def before_step(self, step: int) -> None:
        """Per-step schedule of the stage (e.g. how much of its own rollouts it trains on)."""

    def validate(self, batch: dict) -> dict[str, tuple[float, float]]:
        """{name: (sum, count)} over one validation batch; the loop averages across batches and ranks."""
        return {}

    def write_samples(self, batch: dict, path: Path) -> None:
        """Write a picture of what the model makes of `batch` (tokenizer and decoder stages)."""

    export_dir = "model"  # where in the run folder the stage's product goes

    def export(self, folder: Path) -> None:
        """Write the run's product: the whole WorldModel (config.json + model.safetensors); a LoRA
        stage (finetune/train.py) writes only its adapter."""
        self.model.save_pretrained(folder)


def build_model(config: RunConfig) -> WorldModel:
    """The WorldModel a run starts from: an earlier stage's folder, fresh weights of a variant, or fresh
    weights of a variant with some parts taken from an earlier folder (model.init_parts)."""
    from core.config import zoo_config
    from core.world_model import CONFIG_FILE, WEIGHTS_FILE, load_config, load_weights

    parts = config.model.init_parts
    if config.model.init and parts is None:
        return WorldModel.from_pretrained(config.model.init).train()
    variant = config.model.variant
    architecture = load_config(variant) if variant.endswith(".json") else zoo_config(variant)
    model = WorldModel(architecture)
    if parts:  # the rest of init may be of another architecture: only the named parts are read
        source = load_config(Path(config.model.init) / CONFIG_FILE)
        grown = grow_dynamics(source, architecture) if "dynamics" in parts else []
        grown += grow_upsampler(source, architecture) if "decoder" in parts else []
        widen = widen_motion(source, architecture) if "dynamics" in parts else None
        for part in parts:
            if getattr(source, part) != getattr(architecture, part):
                raise ConfigError(
                    f"model.init_parts: {config.model.init}'s {part} is not the one {variant} "
                    f"describes ({getattr(source, part)} vs {getattr(architecture, part)})"
                )
        load_weights(model, Path(config.model.init) / WEIGHTS_FILE, parts, grown, widen)
    return model.train()


def grow_dynamics(source, architecture) -> list[str]:
    """The parts a frames dynamics of `architecture` adds at zero to the trained one `source` describes
    (core/frame_dynamics.py), which then starts predicting as that did: a denoiser grown from a direct dynamics
    (the same U-Net), a denoiser's input of its context frames' noise level, a motion net (whose head starts at
    "nothing moves": play is the frame before until it learns) or its input of the full frame. How a denoiser
    samples (its steps, its play noise) is no weight: it may differ. Brings source's description in line with what
    it can grow into."""
    if not source.family == architecture.family == "frames":
        return []
    old, new = source.dynamics, architecture.dynamics
    grown = []
    if new.denoise_steps and not old.denoise_steps:
        grown.append("dynamics.denoiser")
    elif new.context_level and not old.context_level and old.denoise_steps:
        grown.append("dynamics.denoiser.context_level_in")
    if new.denoise_steps and (grown or old.context_level == new.context_level):
        old.denoise_steps, old.context_level = new.denoise_steps, new.context_level
        old.play_context_noise = new.play_context_noise
    if new.motion is not None and old.motion is None:
        grown.append("dynamics.motion")
        old.motion = new.motion
    elif new.motion is not None and new.motion.full_frame and not old.motion.full_frame:
        grown.append("dynamics.motion.full_in")
        old.motion.full_frame = new.motion.full_frame
    return grown


def widen_motion(source, architecture) -> Callable[[dict], dict] | None:
    """A motion net of `architecture` that reaches farther (dynamics.motion.radius) than the trained one `source`
    describes -> what turns source's tensors into its (its head scores more moves: core.frame_motion.widen_moves),
    or None. Brings source's description in line with what it can widen into; a narrower one is not made."""
    if not source.family == architecture.family == "frames" or None in (
        source.dynamics.motion,
        architecture.dynamics.motion,
    ):
        return None
    old, new = source.dynamics.motion.radius, architecture.dynamics.motion.radius
    if new <= old:
        return None
    source.dynamics.motion.radius = new
    head = f"dynamics.motion.{SCORES_LAYER}"

    def widen(tensors: dict) -> dict:
        weight, bias = tensors[f"{head}.weight"], tensors[f"{head}.bias"]
        tensors[f"{head}.weight"], tensors[f"{head}.bias"] = widen_moves(weight, bias, old, new)
        return tensors

    return widen


def grow_upsampler(source, architecture) -> list[str]:
    """The parts a frames upsampler of `architecture` adds to the trained one `source` describes (core/frame_codec.py):
    a motion field (decoder.warp), which starts at zero and so draws as that did, or the blend's learnt gate
    (decoder.base: blend), whose correction starts at zero over its fixed prior. Brings source's description in
    line with what it can grow into."""
    if not source.family == architecture.family == "frames":
        return []
    old, new = source.decoder, architecture.decoder
    grown = []
    if old.warp == "none" and new.warp != "none":
        grown.append("decoder.flow")
        old.warp = new.warp
    elif {old.warp, new.warp} == {"free", "gated"}:  # the same layer; gating is no weight
        old.warp = new.warp
    if old.base == "previous" and new.base == "blend":
        grown.append("decoder.blend")
        old.base = new.base
    return grown


def prepare_run_dir(config: RunConfig, resume: bool, names: dict[str, str] | None = None) -> tuple[Path, Path | None]:
    """Check the run folder against --resume; returns (run folder, checkpoint to resume or None). `names`: what
    the user calls a config key (a command's flag that sets it), for the message when a resume differs."""
    if not config.out:
        raise ConfigError("set the run folder: out: runs/NAME in the config, or out=runs/NAME as an override")
    run_dir = Path(config.out)
    saved = run_dir / CONFIG_FILE
    checkpoint = latest_checkpoint(run_dir)
    if not resume:
        if saved.exists() or checkpoint is not None:
            raise FileExistsError(
                f"{run_dir} already holds a run; pass --resume to continue it, "
                "or set another out= to start a new one (nothing was overwritten)"
            )
        return run_dir, None
    if saved.exists():
        old = load_run_config(saved)
        differences = config_differences(old, config)
        if differences:
            before, now = flatten(old.to_dict()), flatten(config.to_dict())
            named = [f"{(names or {}).get(key, key)} {before.get(key)} (now {now.get(key)})" for key in differences]
            raise CheckpointError(
                f"{run_dir} was trained with {', '.join(named)}; resume with the same settings, or start anew "
                "in another folder (nothing was overwritten)"
            )
    return run_dir, checkpoint


def train(
    config: RunConfig, stage_class: type[Stage], resume: bool = False, names: dict[str, str] | None = None
) -> dict:
    """Run (or resume) one training stage; returns a summary of where it ended. `names`: prepare_run_dir's."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    run_dir, checkpoint = prepare_run_dir(config, resume, names)
    cfg = config.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = Accelerator(
        cpu=cfg.cpu,
        mixed_precision=cfg.mixed_precision,
        log_with="tensorboard" if config.log.tensorboard else None,
        project_dir=str(run_dir),
    )
    accelerator.wait_for_everyone()  # every rank has checked the run folder before the main one writes to it
    set_seed(cfg.seed)  # same initial weights on every rank and in every run of this config
    train_refs = index_shards(config.data.train, stage_class.data_kind, "train")
    if not train_refs:
        raise FileNotFoundError(f"no samples of split 'train' in {config.data.train}")
    val_refs = index_shards(config.data.val or config.data.train, stage_class.data_kind, "val")
    model = build_model(config)
    stage = stage_class(config, model)
    stage.check_data(train_refs)
    objective = stage.objective
    optimizer = build_optimizer(objective, config.optim)
    ema = EMA(objective, cfg.ema_decay) if cfg.ema_decay else None
    objective, optimizer = accelerator.prepare(objective, optimizer)
    raw = accelerator.unwrap_model(objective)
    stage.to(accelerator.device)
    if ema is not None:
        ema.to(accelerator.device)

    step, resumed = 0, None
    if checkpoint is not None:
        resumed = load_checkpoint(checkpoint, accelerator, raw, optimizer, ema)
        step = resumed["step"]
        accelerator.print(f"resuming {run_dir} from {checkpoint.name}")
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run_config(config, run_dir / CONFIG_FILE)
    accelerator.wait_for_everyone()
    metrics_log = MetricsLog(run_dir, step if resumed else None) if accelerator.is_main_process else None
    if config.log.tensorboard:
        accelerator.init_trackers("tb", config={k: str(v) for k, v in flatten(config.to_dict()).items()})

    batches = ClipBatches(
        train_refs,
        config.data.clip_len,
        config.data.stride,
        config.data.shuffle_window,
        cfg.batch_size,
        cfg.seed,
        accelerator.process_index,
        accelerator.num_processes,
    )
    batches.skip(resumed["clips_consumed"] if resumed else 0)
    val = validation_batches(
        val_refs,
        config.data.clip_len,
        config.data.val_clips,
        cfg.batch_size,
        accelerator.process_index,
        accelerator.num_processes,
    )
    if config.log.val_every and not val_refs:
        accelerator.print(f"note: no split 'val' samples in {config.data.val or config.data.train}: no validation")
    sample_batch = (
        val[0]
        if val
        else next(ClipBatches(train_refs, config.data.clip_len, config.data.stride, 1, cfg.batch_size, cfg.seed + 1))
    )

    frames_per_step = cfg.batch_size * config.data.clip_len * accelerator.num_processes * cfg.accumulation
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"train {config.stage}",
        unit="step",
        disable=not (config.log.progress and accelerator.is_main_process),
    )
    started, train_seconds, window = time.monotonic(), 0.0, []
    stopped, last_saved = "done", step if resumed else None

    def checkpoint_now():
        nonlocal last_saved
        save_checkpoint(
            run_dir,
            accelerator,
            step,
            raw,
            optimizer,
            ema,
            {"clips_consumed": batches.consumed, "keep": config.log.keep, "stage": config.stage},
        )
        last_saved = step

    while step < cfg.steps:
        step_started = time.monotonic()
        stage.before_step(step)
        spent = (time.monotonic() - started) / (60 * cfg.time_limit_minutes) if cfg.time_limit_minutes else 0.0
        lr = lr_at(step, cfg.steps, config.optim, spent)
        for group in optimizer.param_groups:
            group["lr"] = lr
        finite, values = True, {}
        for micro in range(cfg.accumulation):
            batch = {k: v.to(accelerator.device) for k, v in next(batches).items()}
            sync = micro == cfg.accumulation - 1
            with nullcontext() if sync else accelerator.no_sync(objective):
                loss, metrics = objective(batch)
                finite &= bool(torch.isfinite(loss))
                accelerator.backward(loss / cfg.accumulation)
            for name, value in metrics.items():
                values[name] = values.get(name, 0.0) + float(value) / cfg.accumulation
        norm = accelerator.clip_grad_norm_(objective.parameters(), config.optim.grad_clip or float("inf"))
        if cfg.mixed_precision != "fp16":  # under fp16 an inf norm is the loss scaler's overflow: it skips the step
            finite &= bool(torch.isfinite(norm))
        if not _all(accelerator, finite):
            last = latest_checkpoint(run_dir)
            raise TrainingDiverged(
                f"loss or gradient became NaN/inf at step {step + 1}; stopped before applying it. "
                + (
                    f"The last good checkpoint is {last} (step {int(last.name.split('-')[1])}), untouched. "
                    if last
                    else "No checkpoint had been written yet. "
                )
                + "Lower optim.lr, keep optim.grad_clip on, or check the data; then --resume."
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(raw)
        step += 1
        train_seconds += time.monotonic() - step_started
        bar.update(1)
        window.append({**values, "grad_norm": float(norm)})

        out_of_time = bool(cfg.time_limit_minutes) and _main_decides(
            accelerator, time.monotonic() - started > 60 * cfg.time_limit_minutes
        )
        if step % config.log.every == 0 or step == cfg.steps or out_of_time:  # a stopped run logs its last steps
            logged = {k: sum(v[k] for v in window) / len(window) for k in window[0]}
            logged = {
                k: float(v)
                for k, v in zip(
                    logged, accelerator.reduce(torch.tensor(list(logged.values()), device=accelerator.device), "mean")
                )
            }
            logged.update(lr=lr, frames_per_second=len(window) * frames_per_step / max(train_seconds, 1e-9))
            _log(accelerator, metrics_log, step, "train", logged)
            bar.set_postfix(loss=f"{logged['loss']:.4f}")
            train_seconds, window = 0.0, []
        if config.log.val_every and val_refs and (step % config.log.val_every == 0 or step == cfg.steps or out_of_time):
            _log(accelerator, metrics_log, step, "val", _validate(accelerator, stage, raw, ema, val))
        if config.log.sample_every and step % config.log.sample_every == 0 and accelerator.is_main_process:
            with torch.no_grad(), ema.applied(raw) if ema else nullcontext():
                stage.write_samples(
                    {k: v.to(accelerator.device) for k, v in sample_batch.items()},
                    run_dir / "samples" / f"step-{step:07d}.png",
                )
        if out_of_time:
            stopped = "time_limit"
            break
        if step % config.log.save_every == 0 and step < cfg.steps:
            checkpoint_now()

    bar.close()
    if last_saved != step:
        checkpoint_now()
    if accelerator.is_main_process:
        with ema.applied(raw) if ema else nullcontext():
            stage.export(run_dir / stage.export_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    summary = {
        "stage": config.stage,
        "step": step,
        "steps": cfg.steps,
        "stopped": stopped,
        "run_dir": str(run_dir),
        "model": str(run_dir / stage.export_dir),
        "processes": accelerator.num_processes,
        "seconds": round(time.monotonic() - started, 1),
    }
    accelerator.print(f"{config.stage}: {stopped} at step {step}/{cfg.steps}; exported to {run_dir / stage.export_dir}")
    return summary


@torch.no_grad()
def _validate(accelerator, stage: Stage, raw, ema, val: list[dict]) -> dict[str, float]:
    totals = {name: [0.0, 0.0] for name in stage.val_metrics}
    was_training = raw.training
    raw.eval()
    with ema.applied(raw) if ema else nullcontext():
        for batch in val:
            for name, (total, count) in stage.validate({k: v.to(accelerator.device) for k, v in batch.items()}).items():
                totals[name][0] += total
                totals[name][1] += count
    raw.train(was_training)
    flat = torch.tensor(
        [x for name in stage.val_metrics for x in totals[name]], device=accelerator.device, dtype=torch.float64
    )
    flat = accelerator.reduce(flat, "sum").tolist()
    return {name: flat[2 * i] / max(flat[2 * i + 1], 1) for i, name in enumerate(stage.val_metrics)}


def _log(accelerator, metrics_log, step: int, split: str, values: dict[str, float]) -> None:
    accelerator.log({f"{split}/{k}": v for k, v in values.items()}, step=step)
    if metrics_log is not None:
        metrics_log.write(step, split, values)


def _all(accelerator, flag: bool) -> bool:
    """Every rank agrees (so all ranks stop together, never one waiting on the others)."""
    return bool(
        accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum").item()
        == accelerator.num_processes
    )


def _main_decides(accelerator, flag: bool) -> bool:
    """The main process's decision, shared with every rank (clocks differ between ranks)."""
    from accelerate.utils import broadcast

    return bool(broadcast(torch.tensor([float(flag)], device=accelerator.device)).item())
