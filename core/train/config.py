"""Run configs for every training stage: sectioned dataclasses, read from YAML or TOML, with
command-line overrides `section.field=value`.

A run's config is flat sections of plain fields (as in nanoGPT's train config, but typed and
checked instead of exec'd): an unknown section or field is an error naming it, values are
checked against the field's type, and the resolved config is saved in the run folder
(`config.yaml`) so a resumed run can be compared with the one that made the checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import ConfigError, build_dataclass

STAGES = ("tokenizer", "tokens", "dynamics", "decoder", "long_horizon", "distill", "frames")


@dataclass
class ModelSection:
    variant: str = "nano"  # zoo variant or path to a config.json: the architecture of fresh weights
    init: str | None = None  # a WorldModel folder (an earlier stage's run/model) to start from; its config wins
    init_parts: list[str] | None = None  # only these parts of `init` (tokenizer, dynamics, decoder) over fresh
    # weights of `variant`, whose config wins: e.g. a trained dynamics, a new upsampler


@dataclass
class DataSection:
    train: list[str] = field(
        default_factory=list
    )  # gameplay shard folders/.tar files (token shards for dynamics stages)
    val: list[str] | None = None  # where validation clips come from (default: `train`); only split "val" is used
    clip_len: int = 32  # frames per training clip (1 for the tokenizer)
    stride: int = 32  # frames between clip starts within one recorded sample
    shuffle_window: int = 8  # samples whose clips are shuffled together (memory ~ window x sample size)
    val_clips: int = 32  # validation clips per evaluation (evenly spaced over the validation samples, fixed)


@dataclass
class OptimSection:
    lr: float = 3e-4  # peak learning rate (AdamW)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    beta1: float = 0.9  # AdamW first-moment decay
    beta2: float = 0.95  # AdamW second-moment decay (0.95: steadier on small batches)
    warmup_steps: int = 100  # linear warmup from 0 to lr
    schedule: str = "cosine"  # after warmup: cosine or linear decay to min_lr_ratio*lr, or constant
    min_lr_ratio: float = 0.1  # floor of the decay as a share of lr
    # what the decay runs over: train.steps ("steps"), or whichever of the steps and train.time_limit_minutes runs
    # out first ("budget": a run cut short by its time limit still ends its decay; a fine-tune's --minutes)
    decay_over: str = "steps"
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)


@dataclass
class TrainSection:
    steps: int = 1000  # optimizer steps in the whole run (a resumed run continues to this)
    batch_size: int = 4  # clips per process per micro-batch
    accumulation: int = 1  # micro-batches per optimizer step (global batch = batch x processes x this)
    seed: int = 0  # seeds weights, data order and sampling
    mixed_precision: str = "no"  # no, bf16 or fp16 (bf16 is slower on CPUs without AMX: keep "no" there)
    ema_decay: float = 0.0  # exponential moving average of the weights (0 = off; e.g. 0.999); exported if on
    threads: int = 0  # torch threads per process (0 = torch's default)
    cpu: bool = False  # train on CPU even when a GPU is present
    time_limit_minutes: float = 0.0  # stop with a checkpoint after this long (0 = none): for chunked background runs
    rare_colour_weight: float = (
        0.0  # tokenizer/decoder: extra loss weight on rare-colour (sprite) pixels, see core.tokenizer
    )
    changed_token_weight: float = 0.0  # dynamics: extra loss weight on token positions that change to the next frame


@dataclass
class LogSection:
    every: int = 10  # steps between metric lines (JSONL + TensorBoard)
    val_every: int = 100  # steps between validations (0 = never)
    save_every: int = 200  # steps between checkpoints (one is also written at the end)
    keep: int = 2  # checkpoints kept (older ones are deleted after a new one is complete)
    sample_every: int = 200  # tokenizer/decoder: steps between real-vs-reconstructed grids (0 = never)
    progress: bool = True  # tqdm progress bar on the main process
    tensorboard: bool = True  # also log to TensorBoard (run/tb) through accelerate's tracker


@dataclass
class LongHorizonSection:
    passes: int = 2  # rollout passes: pass k feeds the model its own predictions k frames deep
    max_mix: float = 0.5  # final share of context frames replaced by the model's own predictions
    ramp_steps: int = 500  # steps over which the share grows from 0 to max_mix (scheduled sampling)
    temperature: float = 1.0  # sampling temperature of the model's own predictions (0 = argmax)
    rollout_frames: int = 16  # validation: frames of open-loop rollout whose token accuracy is logged


@dataclass
class DistillSection:
    """The distill stage's section, and the config of its loss (core.distill.DistillObjective reads the weights)."""

    teacher: str | None = None  # a WorldModel folder (or Hub id) sharing the student's token vocabulary
    temperature: float = 2.0  # softens both distributions in the KL term (Hinton et al. 2015)
    logit_weight: float = 1.0  # weight of KL(teacher || student) on token logits (x temperature^2)
    feature_weight: float = 0.1  # weight of MSE between projected student and teacher hidden features
    label_weight: float = 1.0  # weight of cross-entropy with the recorded next tokens

    def __post_init__(self):
        if self.temperature <= 0:
            raise ConfigError(f"distill.temperature must be positive, got {self.temperature}")
        if min(self.logit_weight, self.feature_weight, self.label_weight) < 0:
            raise ConfigError("distill.logit_weight, feature_weight and label_weight must be >= 0")


@dataclass
class FramesSection:
    unroll: int = 3  # frames stage: small frames predicted per clip, each fed back as context
    context_noise: float = 0.03  # max std of the Gaussian noise on real context frames (drawn per clip)
    small_noise: float = 0.02  # std of the noise on the small frame the upsampler learns from
    decoder_clips: int = 4  # clips of each batch the upsampler learns from (it costs as much per clip as
    # the 3-step dynamics and learns faster: fewer clips keep a step cheap)
    predicted_share: float = 0.0  # share of those clips whose small frame is the dynamics' own prediction (what
    # the upsampler gets in play) rather than the real small frame + noise
    changed_weight: float = 0.0  # pixels that differ from the previous frame weigh 1 + this, in the dynamics' and
    # the upsampler's loss (motion is under 1% of a frame: unweighted, a blurred
    # sprite, or the old frame redrawn, costs almost nothing)
    closed_loop: int = 0  # > 0: the upsampler's clips are played as the app plays them for this many frames
    # (the dynamics reads the pooled frames the upsampler drew; the upsampler its own previous frame), so that
    # it learns to clean the blur that otherwise compounds; 0: one frame, from the real previous frame
    freeze_dynamics: bool = False  # train the upsampler alone (the dynamics' loss is left out, its weights kept)
    freeze_upsampler: bool = False  # train the dynamics alone (e.g. a denoiser grown from a direct dynamics)
    # a dynamics with a motion net (dynamics.motion, core/frame_motion.py): freeze it, or how it learns: the moves
    # within motion_tolerance of a square's best are all right, "redraw" where the best is off by > motion_redraw
    # (mean |difference|, [-1, 1] units), squares that move weigh 1 + motion_moving_weight, and those only a move
    # beyond core.frame_motion.FAR_STEP makes (a jump; few, and new to a widened net) motion_far_weight more again
    freeze_motion: bool = False
    motion_tolerance: float = 0.03
    motion_redraw: float = 0.15
    motion_moving_weight: float = 20.0
    motion_far_weight: float = 0.0
    # the motion net learns on its clips played as the app plays them (its own moved frames as what it reads and
    # what it moves; targets from those to the real next frames), so it learns to mend what its own moves tore,
    # instead of on real frame pairs alone
    motion_played: bool = False
    # > 0: the motion net learns on crops of this many small-frame pixels each way (a multiple of 4), each at a
    # place where its clip changes, instead of whole frames: a step then costs a fraction and holds the moves
    # (on real frame pairs; not with motion_played)
    motion_crop: int = 0


@dataclass
class TokensSection:
    out: str = ""  # folder for the token shards (must be new or empty)
    batch_size: int = 64  # frames encoded at once
    shard_mb: int = 64  # token shard size before starting the next


@dataclass
class RunConfig:
    stage: str = "dynamics"  # one of STAGES
    out: str = ""  # run folder: config, metrics, checkpoints, samples, exported model
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    log: LogSection = field(default_factory=LogSection)
    long_horizon: LongHorizonSection = field(default_factory=LongHorizonSection)
    distill: DistillSection = field(default_factory=DistillSection)
    tokens: TokensSection = field(default_factory=TokensSection)
    frames: FramesSection = field(default_factory=FramesSection)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ConfigError(f"unknown stage {self.stage!r}; stages: {', '.join(STAGES)}")
        if self.optim.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"optim.schedule must be cosine, linear or constant, got {self.optim.schedule!r}")
        if self.optim.decay_over not in ("steps", "budget"):
            raise ConfigError(f"optim.decay_over must be steps or budget, got {self.optim.decay_over!r}")
        if self.optim.decay_over == "budget" and not self.train.time_limit_minutes:
            raise ConfigError("optim.decay_over: budget needs train.time_limit_minutes (the budget it decays over)")
        if self.train.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be no, bf16 or fp16, got {self.train.mixed_precision!r}")
        for name in (
            "train.steps",
            "train.batch_size",
            "train.accumulation",
            "data.clip_len",
            "data.stride",
            "data.shuffle_window",
            "log.every",
            "log.save_every",
            "log.keep",
            "tokens.batch_size",
        ):
            section, key = name.split(".")
            if getattr(getattr(self, section), key) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(getattr(self, section), key)}")
        if (
            self.frames.unroll < 1
            or self.frames.decoder_clips < 1
            or self.frames.context_noise < 0
            or self.frames.small_noise < 0
        ):
            raise ConfigError("frames.unroll and frames.decoder_clips must be >= 1 and the noise levels >= 0")
        if not 0 <= self.frames.predicted_share <= 1 or min(self.frames.changed_weight, self.frames.closed_loop) < 0:
            raise ConfigError("frames.predicted_share must be in [0, 1], frames.changed_weight and closed_loop >= 0")
        if self.model.init_parts is not None:
            unknown = set(self.model.init_parts) - {"tokenizer", "dynamics", "decoder"}
            if unknown or not self.model.init:
                raise ConfigError(
                    "model.init_parts takes tokenizer, dynamics and/or decoder from model.init "
                    f"(set it); got {self.model.init_parts} with init {self.model.init!r}"
                )
        if self.stage in ("dynamics", "long_horizon", "distill", "frames") and self.data.clip_len < 2:
            raise ConfigError(f"the {self.stage} stage predicts the next frame: data.clip_len must be >= 2")
        if not 0 <= self.train.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.train.ema_decay}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Fields a resumed run may change: how long it runs and how it reports, not what it computes; and where its folder
# is (a run folder moved or copied is still that run).
RESUMABLE_CHANGES = {
    "out",
    "train.steps",
    "train.time_limit_minutes",
    "train.threads",
    "log.progress",
    "log.every",
    "log.val_every",
    "log.save_every",
    "log.keep",
    "log.sample_every",
    "log.tensorboard",
}


def load_run_config(path: str | Path | None, overrides: list[str] = (), stage: str | None = None) -> RunConfig:
    """Read a YAML/TOML run config (or start from defaults when `path` is None), apply
    `section.field=value` overrides (values parsed as YAML: 3e-4, true, [a, b]) and build it."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"run config {path} not found")
        text = path.read_text(encoding="utf-8")
        data = _read_toml(path, text) if path.suffix == ".toml" else _read_yaml(path, text)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a run config is a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.field=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = yaml.safe_load(value) if value.strip() else ""
    if stage is not None:
        if data.get("stage", stage) != stage:
            raise ConfigError(f"the config is for stage {data['stage']!r}, not {stage!r}")
        data["stage"] = stage
    train = data.get("train")
    if isinstance(train, dict) and train.get("mixed_precision") is False:
        train["mixed_precision"] = "no"  # YAML reads a bare `no` as false
    return build_dataclass(RunConfig, data)


def _read_yaml(path: Path, text: str):
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None


def _read_toml(path: Path, text: str):
    try:
        import tomllib  # the standard library from Python 3.11
    except ImportError:
        raise ConfigError(f"{path}: TOML run configs need Python 3.11+; write it as YAML") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def save_run_config(config: RunConfig, path: Path) -> None:
    from core.train.checkpoint import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_differences(old: RunConfig, new: RunConfig) -> list[str]:
    """Dotted names of fields that differ, except those a resumed run may change."""
    old_flat, new_flat = flatten(old.to_dict()), flatten(new.to_dict())
    return sorted(
        k
        for k in old_flat.keys() | new_flat.keys()
        if old_flat.get(k) != new_flat.get(k) and k not in RESUMABLE_CHANGES
    )


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
