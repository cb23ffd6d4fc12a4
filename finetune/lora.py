"""LoRA adapters on a world model's dynamics through peft (Hu et al. 2021, "LoRA").

One default target list per model family (FAMILY_TARGETS, by the base's config.json `family`):
- tokens: the dynamics' attention projections (spatial self-attention and the action
  cross-attention: to_q, to_k, to_v, to_out) and the Mamba projections (in_proj, out_proj);
- frames: both 3x3 convolutions of every FiLM block (conv1, conv2) and the block's `film`
  Linear, which turns the keys into a scale and shift: what a game with other controls or
  other looks changes. A frames dynamics in "input" action mode has no film layers, so its
  default is the two convolutions.
Targets are Linear layers and plain Conv2d layers. Grouped (depthwise) and dilated convolutions
are refused: peft cannot merge LoRA into a grouped one and builds its LoRA branch without the
dilation. The depthwise conv1d inside Mamba is never a target (it also holds almost no parameters).

An adapter is peft's standard pair, adapter_model.safetensors + adapter_config.json, with
base_model_name_or_path set by us (peft leaves it empty for a custom module), so
`PeftModel.from_pretrained` loads it anywhere. Before an adapter from anywhere (a registry
above all) is loaded, `validate_adapter` checks its config against LoraConfig's schema, its
base against the model it is for, and every tensor's name and shape against the targeted
layers, reading only safetensors; pickle files are refused, never opened.

Beside the weights an adapter may carry play.json: how play should pick from the fine-tuned model's outputs
(the motion net's `decode` and `stay_bias`, both chosen by finetune/play_settings.py). It is checked like the
config and applied whenever the adapter is loaded, so the app, `evaluate --adapter` and a pulled adapter play
alike.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import SafetensorError, safe_open

from core.atomic import staged_folder
from core.config import DECODINGS, ConfigError, WorldModelConfig
from core.config_bounds import read_json
from core.world_model import WorldModel

FAMILY_TARGETS = {
    "tokens": ("to_q", "to_k", "to_v", "to_out", "in_proj", "out_proj"),
    "frames": ("conv1", "conv2", "film"),
}
DEFAULT_TARGETS = FAMILY_TARGETS["tokens"]  # the tokens family's list, under the name it had before frames
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PLAY_FILE = "play.json"
# what play.json may set on the motion net's config: a number's (low, high), or a word's choices
PLAY_SETTINGS = {"stay_bias": (0.0, 64.0), "decode": DECODINGS}
TENSOR_PREFIX = "base_model.model."  # how peft names a wrapped module's tensors in the saved file


class AdapterError(ValueError):
    """An adapter that does not fit the model it is for, or whose files are malformed or unsafe."""


@dataclass
class LoraSettings:
    rank: int = 8  # r: width of the low-rank update
    alpha: float = 16.0  # the update is scaled by alpha / rank
    dropout: float = 0.0  # dropout on the LoRA branch's input while training
    targets: tuple[str, ...] = ()  # dynamics layer names to adapt (Linear or plain Conv2d);
    # empty: the base family's default (FAMILY_TARGETS)

    def __post_init__(self):
        self.targets = tuple(self.targets)
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        if not self.alpha > 0:
            raise ValueError(f"LoRA alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")

    def for_model(self, config: WorldModelConfig) -> LoraSettings:
        """These settings with the targets filled in: the family's default list unless targets were given."""
        return self if self.targets else dataclasses.replace(self, targets=default_targets(config))


def default_targets(config: WorldModelConfig) -> tuple[str, ...]:
    """The family's default target list for a model of `config`."""
    targets = FAMILY_TARGETS[config.family]
    if config.family == "frames" and config.dynamics.action_mode != "film":
        targets = tuple(t for t in targets if t != "film")  # "input" mode has no film layers
    return targets


def _targeted(dynamics: nn.Module, targets) -> dict[str, nn.Module]:
    """The dynamics' modules that `targets` name (as peft matches them: the last name component)."""
    return {name: module for name, module in dynamics.named_modules() if name.rsplit(".", 1)[-1] in targets}


def _plain_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups == 1 and module.dilation == (1, 1)


def _check_targets(dynamics: nn.Module, targets) -> None:
    found = _targeted(dynamics, targets)
    for target in targets:
        if not any(name.rsplit(".", 1)[-1] == target for name in found):
            usable = sorted(
                {
                    n.rsplit(".", 1)[-1]
                    for n, m in dynamics.named_modules()
                    if (isinstance(m, nn.Linear) or _plain_conv(m)) and not n.rsplit(".", 1)[-1].isdigit()
                }
            )
            raise AdapterError(
                f"LoRA target {target!r} names no layer of the dynamics; layers that can be targeted: "
                f"{', '.join(usable)}"
            )
    for name, module in found.items():
        if isinstance(module, nn.Conv2d) and not _plain_conv(module):
            raise AdapterError(
                f"LoRA target {name!r} is a Conv2d with groups={module.groups}, dilation="
                f"{module.dilation}; only Conv2d layers without groups or dilation are targeted (peft "
                "cannot merge LoRA into grouped or depthwise convolutions, and leaves the dilation out "
                "of its LoRA branch): name other layers"
            )
        if not (isinstance(module, nn.Linear) or _plain_conv(module)):
            raise AdapterError(
                f"LoRA target {name!r} is a {type(module).__name__}; only Linear layers and plain "
                "Conv2d layers are targeted (peft cannot merge depthwise convolutions)"
            )


def lora_config(settings: LoraSettings) -> LoraConfig:
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.targets),
        bias="none",
    )


def add_lora(model: WorldModel, base: str, settings: LoraSettings | None = None) -> WorldModel:
    """Freeze `model` and wrap its dynamics with fresh LoRA layers (only those train); `base` names the
    base model (zoo variant, Hub repo id or folder) and is written into the adapter's config."""
    settings = (settings or LoraSettings()).for_model(model.config)
    _check_targets(model.dynamics, settings.targets)
    model.requires_grad_(False)
    model.dynamics.name_or_path = base  # peft copies this into base_model_name_or_path
    model.dynamics = get_peft_model(model.dynamics, lora_config(settings))
    return model


def trainable_parameters(model: WorldModel) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_adapter(
    model: WorldModel,
    out: str | Path,
    card: str | None = None,
    files: dict[str, Path] | None = None,
    play: dict[str, float | str] | None = None,
) -> Path:
    """Write the adapter (adapter_model.safetensors + adapter_config.json, `card` as README.md, `play` settings
    as play.json, and copies of `files`, {name in the folder: source}, e.g. a loss curve) into the new folder
    `out`, atomically: it appears complete or not at all, and an existing folder with content is refused."""
    if not isinstance(model.dynamics, PeftModel):
        raise AdapterError("this model has no LoRA adapter to save (add_lora or load_adapter first)")
    if play:
        check_play_settings(play, f"play settings for {out}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not empty; adapters are never overwritten")
    with staged_folder(out) as stage:
        # save_embedding_layers=False: we never target embeddings, and peft's "auto" would look the
        # base name up on the Hub (a network call) to guess whether the vocabulary changed
        model.dynamics.save_pretrained(stage, safe_serialization=True, save_embedding_layers=False)
        # peft adds a placeholder card claiming library "peft"; ours comes from finetune/cards.py
        (stage / "README.md").unlink(missing_ok=True)
        if card is not None:
            (stage / "README.md").write_text(card, encoding="utf-8")
        for name, source in (files or {}).items():
            shutil.copyfile(source, stage / name)
        if play:
            (stage / PLAY_FILE).write_text(json.dumps(play, indent=2) + "\n", encoding="utf-8")
    return out


def check_play_settings(settings, where: str) -> dict[str, float | str]:
    """`settings` if it is a JSON object of known play settings (PLAY_SETTINGS), each a number in its range or
    one of its words."""
    if not isinstance(settings, dict):
        raise AdapterError(f"{where}: expected a JSON object, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(PLAY_SETTINGS))
    if unknown:
        raise AdapterError(f"{where}: unknown play setting(s) {unknown}; known: {sorted(PLAY_SETTINGS)}")
    checked = {}
    for name, value in settings.items():
        allowed = PLAY_SETTINGS[name]
        if isinstance(allowed[0], str):
            if value not in allowed:
                raise AdapterError(f"{where}: {name} must be one of {', '.join(allowed)}, got {value!r}")
            checked[name] = value
            continue
        low, high = allowed
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise AdapterError(f"{where}: {name} must be a number from {low:g} to {high:g}, got {value!r}")
        checked[name] = float(value)
    return checked


def read_play_settings(folder: str | Path) -> dict[str, float | str]:
    """The adapter's play.json, checked ({} when it has none)."""
    path = Path(folder) / PLAY_FILE
    if not path.is_file():
        return {}
    try:
        settings = read_json(path)
    except ConfigError as err:
        raise AdapterError(str(err)) from None
    return check_play_settings(settings, str(path))


def motion_of(model: WorldModel):
    """The model's motion net (through a LoRA wrapper too), or None for a model without one."""
    return getattr(model.dynamics, "motion", None)


def apply_play_settings(model: WorldModel, settings: dict[str, float | str], where: str) -> None:
    """Set `settings` on `model`'s motion net (the only part play settings reach today)."""
    if not settings:
        return
    motion = motion_of(model)
    if motion is None:
        raise AdapterError(
            f"{where} sets {sorted(settings)}, which only a frames model with a motion net has; "
            f"this base ({model.config.family} family) has none: the adapter is for another base"
        )
    for name, value in settings.items():
        setattr(motion.config, name, value)


def read_adapter_config(folder: str | Path) -> dict:
    """The adapter's config.json, checked against LoraConfig's schema (and its play.json, if any); the folder
    must hold safetensors only."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no adapter folder at {folder}")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterError(
            f"{folder} holds pickle files ({', '.join(pickles)}); PocketWorld loads adapters from "
            "safetensors only, never pickle. Re-save the adapter with safe_serialization=True"
        )
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise AdapterError(f"{folder} lacks {name}: an adapter folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:  # NaN, Infinity and runaway nesting refused too
        config = read_json(folder / CONFIG_FILE)
    except ConfigError as err:
        raise AdapterError(str(err)) from None
    if not isinstance(config, dict):
        raise AdapterError(f"{folder / CONFIG_FILE}: expected a JSON object, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(LoraConfig)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise AdapterError(f"{folder / CONFIG_FILE}: unknown field(s) {unknown} for a LoRA config")
    problems = []
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')!r}, not 'LORA'")
    if isinstance(config.get("r"), bool) or not isinstance(config.get("r"), int) or config["r"] < 1:
        problems.append(f"r must be a positive whole number, got {config.get('r')!r}")
    if not isinstance(config.get("lora_alpha"), (int, float)) or not config["lora_alpha"] > 0:
        problems.append(f"lora_alpha must be a positive number, got {config.get('lora_alpha')!r}")
    targets = config.get("target_modules")
    if not (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets)):
        problems.append(f"target_modules must be a list of layer names, got {targets!r}")
    if (
        config.get("bias", "none") != "none"
        or config.get("modules_to_save")
        or config.get("rank_pattern")
        or config.get("alpha_pattern")
        or config.get("use_dora")
    ):
        problems.append(
            "only plain LoRA on the targeted layers is supported (bias 'none', no modules_to_save, "
            "rank/alpha patterns or DoRA)"
        )
    if not isinstance(config.get("base_model_name_or_path"), str) or not config["base_model_name_or_path"]:
        problems.append("base_model_name_or_path is not set, so the adapter's base model is unknown")
    if problems:
        raise AdapterError(f"{folder / CONFIG_FILE}: " + "; ".join(problems))
    read_play_settings(folder)  # checked wherever the config is: before a push, after a pull, before a load
    return config


def validate_adapter(folder: str | Path, model: WorldModel, base: str | None = None) -> dict:
    """Check an adapter fits `model` (a plain, unwrapped WorldModel) before loading it: schema, base
    model (when `base` is given), and every tensor's name, shape and values. Returns its config."""
    folder = Path(folder)
    config = read_adapter_config(folder)
    if base is not None and config["base_model_name_or_path"] != base:
        raise AdapterError(
            f"{folder} was trained on {config['base_model_name_or_path']!r}, not on {base!r}; "
            f"load it onto {config['base_model_name_or_path']!r}"
        )
    if isinstance(model.dynamics, PeftModel):
        raise AdapterError("this model already carries an adapter; load a fresh base model first")
    _check_targets(model.dynamics, config["target_modules"])
    rank = config["r"]
    expected = {}
    for name, layer in _targeted(model.dynamics, config["target_modules"]).items():
        if isinstance(layer, nn.Conv2d):  # peft: A is the layer's kernel with `rank` outputs, B a 1x1 conv
            a, b = (rank, layer.in_channels, *layer.kernel_size), (layer.out_channels, rank, 1, 1)
        else:
            a, b = (rank, layer.in_features), (layer.out_features, rank)
        expected[f"{TENSOR_PREFIX}{name}.lora_A.weight"] = a
        expected[f"{TENSOR_PREFIX}{name}.lora_B.weight"] = b
    path = folder / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as tensors:
            names = set(tensors.keys())
            missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
            if missing or unexpected:
                raise AdapterError(
                    f"{path}: tensors do not match the model's targeted layers: missing "
                    f"{missing[:4]}{' ...' if len(missing) > 4 else ''}, unexpected "
                    f"{unexpected[:4]}{' ...' if len(unexpected) > 4 else ''} (an adapter for another "
                    "base model?)"
                )
            for name, shape in expected.items():
                tensor = tensors.get_tensor(name)
                if tuple(tensor.shape) != shape:
                    raise AdapterError(
                        f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, the model needs "
                        f"{shape} (an adapter for another variant?)"
                    )
                if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
                    raise AdapterError(f"{path}: tensor {name!r} is not finite floating point")
    except SafetensorError as err:
        raise AdapterError(f"{path}: not a readable safetensors file ({err})") from None
    return config


def load_adapter(model: WorldModel, folder: str | Path, base: str | None = None) -> WorldModel:
    """Validate the adapter in `folder`, then load it onto `model`'s dynamics with PeftModel.from_pretrained and
    apply its play settings (play.json)."""
    validate_adapter(folder, model, base)
    apply_play_settings(model, read_play_settings(folder), str(Path(folder) / PLAY_FILE))
    model.dynamics = PeftModel.from_pretrained(model.dynamics, str(folder), is_trainable=False)
    return model.eval()


def merge_adapter(model: WorldModel) -> WorldModel:
    """Fold the adapter into the dynamics' weights: the same outputs at the base model's speed."""
    if not isinstance(model.dynamics, PeftModel):
        raise AdapterError("this model has no LoRA adapter to merge")
    model.dynamics = model.dynamics.merge_and_unload()
    return model
