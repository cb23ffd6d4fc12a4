"""LoRA fine-tuning of a world model's dynamics on your own game (Hu et al. 2021, "LoRA"; on CUDA
optionally over an 8/4-bit base, QLoRA, Dettmers et al. 2023).

There is no second training loop: a fine-tune is the base family's dynamics-training stage run
by core/train/loop.py (the dynamics stage for a tokens model, the frames stage for a frames
model), with the model wrapped by `add_lora` in the stage's constructor, before the loop builds
its optimizer (which takes only parameters that require grad: the LoRA matrices), and exporting
only the adapter. So it gets the loop's progress bar, metrics, checkpoints and --resume.

`finetune` takes gameplay shards (from `pocketworld ingest`). A tokens base has them encoded
once with its own tokenizer into RUN/tokens (core/train/tokens.py), or takes token shards of
that tokenizer as they are; a frames base reads the gameplay shards directly (it has no
tokenizer, so token shards are refused). After training it scores the held-out (split "val")
clips with the base and with the fine-tune through the stage's own validation, chooses how play
will decode a motion net's moves (finetune/play_settings.py), plots the loss curves, and writes
OUT, atomically, as a standard peft adapter with its play settings (play.json), a fine-tune card
(finetune/cards.py) and the curve beside it.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core import zoo
from core.data.shards import list_shards
from core.train.config import (
    DataSection,
    FramesSection,
    LogSection,
    ModelSection,
    OptimSection,
    RunConfig,
    TokensSection,
    TrainSection,
)
from core.train.data import GAMEPLAY, TOKENS, DataError, index_shards, load_sample, validation_batches
from core.train.dynamics import DynamicsStage
from core.train.frames import FramesObjective, FramesStage
from core.train.loop import Stage
from core.world_model import CONFIG_FILE, WorldModel, load_config
from finetune.lora import LoraSettings, add_lora, apply_play_settings, load_adapter, save_adapter
from finetune.play_settings import choose_play_settings
from finetune.quantize import check_quantization, quantize_dynamics

ADAPTER_DIR = "adapter"  # inside the run folder: what the loop exports
# small-frame pixels each way of the crops a motion net learns on: 16 (64x64 of the frame's pixels) made 7-9x the
# steps of whole frames in bricks fine-tunes and a higher teacher-forced PSNR (39.0-40.3 dB against 37.3-38.9);
# in free play the two tie over two seeds (README "Bring your own game", "Where it stands")
MOTION_CROP = 16
CURVE_FILE = "loss_curve.png"
PREVIEW_FILE = "preview.gif"  # on the card: real play (left) and the fine-tune's dream of it (right)
# the stage that trains each family's dynamics: (the run config's stage name, its class)
FAMILY_STAGES = {"tokens": ("dynamics", DynamicsStage), "frames": ("frames", FramesStage)}
# card labels of the frames stage's validation metrics (the tokens stage's read well as they are)
METRIC_LABELS = {
    "dynamics_mse": "dynamics MSE",
    "dynamics_mse_shuffled_actions": "dynamics MSE, keys shuffled",
    "action_gap_relative": "key gap (shuffled / true MSE - 1)",
    "copy_last_mse": "MSE of repeating the last frame",
    "decoder_psnr": "decoder PSNR (dB)",
}


@dataclass
class FinetuneConfig:
    base: str  # zoo variant (nano, ...) or a WorldModel folder (config.json + model.safetensors)
    data: str  # gameplay shards from `pocketworld ingest`, or token shards of the base's tokenizer
    out: str  # new folder for the adapter, its card and loss curve
    run_dir: str = ""  # working folder: tokens, checkpoints, metrics (default: OUT.run)
    lora: LoraSettings = field(default_factory=LoraSettings)
    steps: int = 300  # optimizer steps
    lr: float = 1e-3  # peak learning rate (LoRA takes larger steps than full training)
    batch_size: int = 4  # clips per step
    clip_len: int = 16  # tokens bases: frames per clip. A frames base's clips are always its
    # dynamics.context + unroll frames: the frames stage uses no more
    unroll: int = 3  # frames bases: frames predicted per clip, each fed back as context (as
    # the frames stage trains them; ignored for a tokens base)
    # frames bases: the max std of the noise on context frames (nano v2 learnt under up to 0.3, which keeps its
    # rollouts steadier; on bricks 0.3 gave better free rollouts but read fewer keys than 0.03: README "Bring your
    # own game"), and the extra weight of pixels that move (the paddle and ball are under 1% of a frame)
    context_noise: float = 0.03
    changed_weight: float = 0.0
    # frames bases with a motion net: the extra loss weight of squares that move (the frames stage's
    # motion_moving_weight; 5 rather than the stage's 20: on bricks, 4-minute fine-tunes read more keys in free
    # play, README "Bring your own game"), and whether the net learns on clips played from its own moves
    # (motion_played: it learns to mend what its moves tore) rather than on real frame pairs alone
    moving_weight: float = 5.0
    played: bool = False
    # > 0: the motion net learns on crops of this many small-frame pixels each way, each where its clip moves
    # (frames.motion_crop), instead of whole frames (MOTION_CROP; 0 with `played`)
    motion_crop: int = MOTION_CROP
    # > 0: the adapter shipped is the exponential moving average of its weights with this decay (train.ema_decay),
    # not the last step's: on bricks, two seeds read 6.5 and 6.6 points more of the keys over 30 s with 0.999 than
    # without (README "Bring your own game"); 0: the last step's
    ema: float = 0.999
    val_every: int = 0  # steps between validations (0: four times a run)
    threads: int = 0  # torch threads (0: torch's default)
    quantize: str = "none"  # none, 8bit or 4bit (a bitsandbytes base: CUDA only)
    seed: int = 0  # seeds the LoRA init and the data order
    minutes: float = 0.0  # time budget for encoding + training; training stops with a checkpoint
    # when it is spent (0: none). Scoring the held-out clips comes after it.
    game: str | None = None  # the game's name on the card (default: the one stored in the shards)
    preview_frames: int = 60  # the card's preview GIF: a clip of the play (a held-out one if there is one) beside
    # the fine-tune's dream of it under the same keys, this many frames (0: none; token shards hold no frames)
    progress: bool = True  # progress bars

    def __post_init__(self):
        for name in ("steps", "batch_size", "clip_len", "unroll"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive whole number, got {getattr(self, name)}")
        if self.clip_len < 2:
            raise ValueError("clip-len must be >= 2: the dynamics learns to predict the next frame")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for name in ("val_every", "threads", "minutes", "changed_weight", "moving_weight", "preview_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.motion_crop and (self.motion_crop % 4 or self.motion_crop < 0):
            raise ValueError(f"motion-crop must be 0 or a positive multiple of 4, got {self.motion_crop}")
        if self.motion_crop and self.played:
            raise ValueError("motion-crop cuts real frame pairs; --played plays whole clips: pass --motion-crop 0")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be from 0 (off) to below 1, got {self.ema}")
        if not 0 <= self.context_noise <= 1:
            raise ValueError(f"context-noise must be from 0 to 1, got {self.context_noise}")
        if not self.run_dir:
            self.run_dir = str(Path(self.out)) + ".run"


def data_kind(data: str | Path) -> str:
    """GAMEPLAY or TOKENS: what the shards at `data` hold; a clear error when they are neither."""
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"--data {data}: no such file or folder; pass the shards `pocketworld ingest` wrote")
    if data.is_dir() and not any(data.iterdir()):
        raise FileNotFoundError(f"--data {data} is empty; ingest your gameplay into it first (pocketworld ingest)")
    shard = list_shards(data)[0]  # FileNotFoundError for a folder without .tar shards
    try:
        with tarfile.open(shard, "r") as tar:
            names = tar.getnames()
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"{shard} is not a readable tar shard ({err}); re-run pocketworld ingest") from None
    if any(name.endswith(".tokens.npy") for name in names):
        return TOKENS
    if any(name.endswith(".frames.png") for name in names):
        return GAMEPLAY
    raise DataError(
        f"{shard} holds neither gameplay (frames.png) nor token (tokens.npy) samples: "
        "not PocketWorld shards; make them with pocketworld ingest"
    )


def lora_frames_objective(model, options) -> FramesObjective:
    """What a LoRA fine-tune of a frames model learns from. The adapter touches only the dynamics, so not the
    upsampler (its frozen term would be a constant whose full-size frames took most of a step's time); and a
    motion net that never redraws plays without the denoiser, so then only the motion net learns."""
    motion = model.dynamics.motion
    denoiser_plays = motion is None or motion.config.redraw
    return FramesObjective(model, options, train_upsampler=False, train_dynamics=denoiser_plays)


def lora_stage(base: str, settings: LoraSettings, quantize: str = "none", family: str = "tokens") -> type[Stage]:
    """The stage that trains a `family` model's dynamics (FAMILY_STAGES), fine-tuning only LoRA layers on
    `base` and exporting only the adapter. (A class made per call: the loop builds its stage from
    (config, model) alone.)"""

    class LoraStage(FAMILY_STAGES[family][1]):
        export_dir = ADAPTER_DIR

        def __init__(self, config, model):
            if quantize != "none":
                model.dynamics = quantize_dynamics(model.dynamics, quantize)
            add_lora(model, base, settings)  # freezes the base: the loop's optimizer sees the LoRA params only
            super().__init__(config, model)
            if isinstance(self.objective, FramesObjective):
                self.objective = lora_frames_objective(model, config.frames)

        def export(self, folder: Path) -> None:
            # the run's own product, as the loop's model/ export is: a resumed, finished run writes it again
            shutil.rmtree(folder, ignore_errors=True)
            save_adapter(self.model, folder)

    return LoraStage


def run_config(config: FinetuneConfig, base_dir: Path, shards: Path, time_limit_minutes: float = 0.0) -> RunConfig:
    """The loop's run config for a fine-tune of the model in `base_dir` on `shards` (token shards for a tokens
    base, gameplay shards for a frames base); training stops after `time_limit_minutes` (0: no limit)."""
    steps = config.steps
    architecture = load_config(Path(base_dir) / CONFIG_FILE)
    stage = FAMILY_STAGES[architecture.family][0]
    clip_len, stride = config.clip_len, config.clip_len
    if architecture.family == "frames":
        # a clip is exactly what one frames-stage example uses; clips start at every frame (stride 1),
        # as each start is another example and a fine-tune's recording is short
        clip_len, stride = architecture.dynamics.context + config.unroll, 1
    return RunConfig(
        stage=stage,
        out=config.run_dir,
        model=ModelSection(init=str(base_dir)),
        data=DataSection(train=[str(shards)], clip_len=clip_len, stride=stride),
        frames=FramesSection(
            unroll=config.unroll,
            context_noise=config.context_noise,
            changed_weight=config.changed_weight,
            motion_moving_weight=config.moving_weight,
            motion_played=config.played,
            motion_crop=config.motion_crop,
        ),
        # under --minutes the rate decays over the budget: a run the clock stops still ends at the low rate
        optim=OptimSection(
            lr=config.lr,
            warmup_steps=max(1, min(100, steps // 10)),
            decay_over="budget" if time_limit_minutes else "steps",
        ),
        train=TrainSection(
            steps=steps,
            batch_size=config.batch_size,
            seed=config.seed,
            threads=config.threads,
            ema_decay=config.ema,
            time_limit_minutes=time_limit_minutes,
        ),
        log=LogSection(
            every=max(1, min(10, steps // 50)),
            val_every=config.val_every or max(1, steps // 4),
            save_every=max(1, steps // 4),
            keep=1,
            sample_every=0,
            progress=config.progress,
            tensorboard=False,
        ),
    )


# the training loop's keys that `finetune`'s flags set: a resume that changes one names the flag (prepare_run_dir)
LOOP_FLAGS = {
    "train.ema_decay": "--ema",
    "optim.warmup_steps": "--steps' warm-up",
    "optim.lr": "--lr",
    "train.batch_size": "--batch-size",
    "train.seed": "--seed",
    "frames.unroll": "--unroll",
    "frames.context_noise": "--context-noise",
    "frames.changed_weight": "--changed-weight",
    "frames.motion_moving_weight": "--moving-weight",
    "frames.motion_played": "--played",
    "frames.motion_crop": "--motion-crop",
}


@torch.no_grad()
def held_out_metrics(model: WorldModel, refs, config: RunConfig) -> dict[str, float]:
    """The validation metrics of `model` over the held-out clips `refs`, from its family's stage: loss,
    accuracy, changed-token and rollout accuracy (tokens); dynamics MSE with the true and with shuffled
    keys, their relative gap, the repeat-the-last-frame MSE and the decoder's PSNR (frames)."""
    stage = FAMILY_STAGES[model.config.family][1](config, model.eval())
    totals: dict[str, list[float]] = {}
    for batch in validation_batches(refs, config.data.clip_len, config.data.val_clips, config.train.batch_size):
        for name, (total, count) in stage.validate(batch).items():
            totals.setdefault(name, [0.0, 0.0])
            totals[name][0] += total
            totals[name][1] += count
    return {name: total / max(count, 1) for name, (total, count) in totals.items()}


def write_preview(model: WorldModel, refs, frames: int, path: Path) -> bool:
    """The card's preview GIF: the first of `refs` with more than `frames` frames, beside the model's dream of it
    from its first frame under its keys. False when no clip is that long."""
    import numpy as np

    from core.play.dream_pairs import dream, write_gif

    ref = next((ref for ref in refs if ref.length > frames), None)
    if ref is None:
        return False
    clip = load_sample(ref)
    real = clip["frames"][: frames + 1]
    dreamed = dream(model.eval(), real[0], clip["actions"][:frames])  # actions[t] led from frame t to t+1
    gap = np.full((len(real), real.shape[1], 4, 3), 255, np.uint8)
    write_gif(np.concatenate([real, gap, dreamed], 2), path, frame_ms=30)
    return True


def finetune(config: FinetuneConfig, resume: bool = False) -> dict:
    """Fine-tune `config.base` on `config.data`; writes the adapter to `config.out` and returns a summary."""
    from core.atomic import atomic_write
    from core.train.loop import train
    from core.train.metrics import plot_run
    from core.train.tokens import encode_shards
    from finetune.cards import finetune_card

    started = time.monotonic()
    check_quantization(config.quantize)  # before any work: a QLoRA request fails at once off CUDA
    out, run_dir = Path(config.out), Path(config.run_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"--out {out} already exists and is not empty; adapters are never overwritten, choose a new folder"
        )
    base_dir = zoo.model_dir(config.base, role="base model")  # the resolver evaluate and play use
    kind = data_kind(config.data)
    architecture = load_config(Path(base_dir) / CONFIG_FILE)
    family = architecture.family
    if family == "frames" and kind == TOKENS:
        raise DataError(
            f"--data {config.data} holds token shards, but {config.base} is a frames-family model: it "
            "reads gameplay directly and has no tokenizer. Pass the gameplay shards `pocketworld ingest` "
            "wrote"
        )
    if family == "frames" and config.quantize != "none":
        raise ValueError(
            f"--quantize {config.quantize} holds a tokens-family base's Linear layers in k bits; "
            f"{config.base} is a frames-family model (convolutions): fine-tune it with --quantize none"
        )
    lora = config.lora.for_model(architecture)  # the family's default targets unless some were named
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"the run folder {run_dir} is not empty (an earlier fine-tune?); pass --resume to "
            "continue it, or choose another --run-dir (nothing was overwritten)"
        )

    shards, read = Path(config.data), kind  # what the stage trains on, and their kind
    if family == "tokens" and kind == GAMEPLAY:
        shards, read = run_dir / "tokens", TOKENS
        if not (resume and shards.is_dir()):
            encode_shards(
                RunConfig(
                    stage="tokens",
                    model=ModelSection(init=str(base_dir)),
                    data=DataSection(train=[config.data]),
                    tokens=TokensSection(out=str(shards)),
                    train=TrainSection(threads=config.threads),
                    log=LogSection(progress=config.progress),
                )
            )
    # what the encode left of the budget; a spent one (a limit no step can meet) takes exactly one step,
    # so there is an adapter
    left = config.minutes - (time.monotonic() - started) / 60 if config.minutes else 0.0
    loop_config = run_config(config, base_dir, shards, time_limit_minutes=max(left, 1e-9) if config.minutes else 0.0)
    summary = train(
        loop_config, lora_stage(config.base, lora, config.quantize, family), resume=resume, names=LOOP_FLAGS
    )

    # score the held-out clips with the fp32 base and with base + adapter, as they will be played
    train_refs = index_shards([str(shards)], read, "train")
    val_refs = index_shards([str(shards)], read, "val")
    tuned = load_adapter(WorldModel.from_pretrained(base_dir), run_dir / ADAPTER_DIR, base=config.base)
    metrics = {}
    if val_refs:
        base_scores = held_out_metrics(WorldModel.from_pretrained(base_dir), val_refs, loop_config)
        tuned_scores = held_out_metrics(tuned, val_refs, loop_config)
        metrics = {name: (base_scores[name], tuned_scores[name]) for name in base_scores}
    # how play decodes this adapter's moves, chosen by free rollouts of the held-out clips
    choice = choose_play_settings(tuned, val_refs) if kind == GAMEPLAY and val_refs else None
    play = {}
    if choice is not None:
        play = {"decode": choice["decode"], "stay_bias": choice["stay_bias"]}
        apply_play_settings(tuned, play, "the chosen play settings")
    curve = run_dir / CURVE_FILE
    plot_run(run_dir, curve)
    files = {CURVE_FILE: curve}
    if kind == GAMEPLAY and config.preview_frames:
        clips = index_shards([config.data], GAMEPLAY, "val") + index_shards([config.data], GAMEPLAY, "train")
        if write_preview(tuned, clips, config.preview_frames, run_dir / PREVIEW_FILE):
            files[PREVIEW_FILE] = run_dir / PREVIEW_FILE

    games = sorted({str(ref.meta.get("game", "unknown")) for ref in train_refs})
    game = config.game or ", ".join(games)
    frames = sum(ref.length for ref in train_refs)
    card = finetune_card(
        out.name,
        config.base,
        game,
        lora.rank,
        lora.alpha,
        list(lora.targets),
        steps=summary["step"],
        data_frames=frames,
        # only what the adapter changes: a motion-only fine-tune leaves the denoiser's scores as they were
        metrics={
            f"held-out {METRIC_LABELS.get(name, name.replace('_', ' '))}": pair
            for name, pair in metrics.items()
            if pair[0] != pair[1]
        },
        preview=PREVIEW_FILE if PREVIEW_FILE in files else None,
        play=choice,
    )
    save_adapter(tuned, out, card=card, files=files, play=play)
    result = {
        "adapter": str(out),
        "run_dir": str(run_dir),
        "base": config.base,
        "family": family,
        "game": game,
        "steps": summary["step"],
        "stopped": summary["stopped"],
        "data_frames": frames,
        "targets": list(lora.targets),
        "adapter_parameters": sum(p.numel() for name, p in tuned.named_parameters() if "lora_" in name),
        "held_out": {name: {"base": b, "finetuned": t} for name, (b, t) in metrics.items()},
        "play_choice": choice,  # what play.json holds (decode, stay_bias) and the sweep that chose it
        "seconds": round(time.monotonic() - started, 1),
    }
    record = {"config": asdict(config), **result}
    atomic_write(
        run_dir / "finetune.json",
        lambda path: Path(path).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8"),
    )
    return result
