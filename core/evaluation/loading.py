"""Resolving what `pocketworld evaluate` is asked to judge: a zoo name, a local model folder, or
either plus a LoRA adapter; and checking model and data agree before any long work starts.

A zoo name resolves to zoo/<name>/ in the repository when its weights are there; a zoo
variant without weights is an error that says how to get some (the design's rule: random
weights are never played, or measured, as if they were a model). An adapter is a peft folder
(adapter_config.json + adapter_model.safetensors) whose base_model_name_or_path must name
the given model; it is loaded onto the dynamics with `PeftModel.from_pretrained`.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.config import ZOO
from core.world_model import CONFIG_FILE, WEIGHTS_FILE, WorldModel

REPO_ROOT = Path(__file__).resolve().parents[2]
ZOO_DIR = REPO_ROOT / "zoo"


def resolve_model(name_or_path: str) -> Path:
    """A local folder holding config.json + model.safetensors for `name_or_path`."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if name_or_path in ZOO:
        folder = ZOO_DIR / name_or_path
        if (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file():
            return folder
        raise FileNotFoundError(
            f"the zoo variant {name_or_path!r} has no trained weights at {folder} yet; train it "
            f"(`pocketworld train ...`) or pass a folder saved with WorldModel.save_pretrained")
    raise FileNotFoundError(f"{name_or_path!r} is neither a model folder nor a zoo variant "
                            f"({', '.join(ZOO)})")


def _same_model(base: str | None, model_arg: str, folder: Path, config_name: str) -> bool:
    if not base:
        return False
    if base in (model_arg, config_name) or Path(base).name in (folder.name, config_name):
        return True
    base_path = Path(base)
    return base_path.exists() and base_path.resolve() == folder.resolve()


def load_model(name_or_path: str, adapter: str | None = None) -> WorldModel:
    """The model in eval mode, with the adapter's LoRA merged into its dynamics when given."""
    folder = resolve_model(name_or_path)
    model = WorldModel.from_pretrained(folder)
    if adapter is None:
        return model
    # finetune's own checks (safetensors only, schema, every tensor's name and shape), as a fine-tune loads it
    from finetune.lora import load_adapter, merge_adapter, read_adapter_config

    adapter_dir = Path(adapter)
    base = read_adapter_config(adapter_dir)["base_model_name_or_path"]
    if not _same_model(base, name_or_path, folder, model.config.name):
        raise ValueError(f"the adapter at {adapter_dir} was trained on base {base!r}, not on {name_or_path!r} "
                         f"({model.config.name}); evaluate it with its own base model")
    # merged, so evaluation runs at the speed of the plain model
    return merge_adapter(load_adapter(model, adapter_dir)).eval()


def check_compatible(model: WorldModel, episodes) -> None:
    """Raise ValueError if the data's frames or actions do not fit the model."""
    size = model.config.image_size
    for episode in episodes:
        if episode.frames.shape[1:] != (size, size, 3):
            raise ValueError(f"the data's frames are {episode.frames.shape[1:3]} but the model reads {size}x{size}; "
                             f"evaluate on data recorded at the model's frame size")
        top = int(episode.actions.max()) if len(episode.actions) else 0
        if top >= model.config.dynamics.num_actions or (len(episode.actions) and episode.actions.min() < 0):
            raise ValueError(f"the data uses action id {top} but the model knows {model.config.dynamics.num_actions} "
                             f"actions (ids 0..{model.config.dynamics.num_actions - 1}); the action vocabularies differ")
