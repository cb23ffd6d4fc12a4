"""Finding and loading a model: the one place a name becomes a folder and a folder a WorldModel.

A model is named by a zoo variant (`nano`, ...) or by a folder saved with
`WorldModel.save_pretrained` (config.json + model.safetensors), optionally with a LoRA adapter
on top. `pocketworld evaluate`, `pocketworld finetune --base`, the play app and the benchmarks
all resolve through `model_dir` and load through `load`, so a name means the same thing
everywhere.

Shipped weights sit in the repository's `zoo/<variant>/` (in a wheel, a copy inside the package:
core/paths.py says which), laid out like a Hub repo (config.json + model.safetensors + README.md), so
`WorldModel.from_pretrained` reads them as it would a downloaded repo. `POCKETWORLD_ZOO` points
elsewhere (e.g. a shared cache).
A variant without weights is reported as such; it is never played with random weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.config import ZOO, zoo_config
from core.config_bounds import check_config_file
from core.paths import ZOO_VARIABLE, zoo_dir
from core.world_model import CONFIG_FILE, WEIGHTS_FILE, WorldModel


class WeightsNotAvailable(FileNotFoundError):
    """A zoo variant whose trained weights are not on this machine."""


class UnknownModelError(ValueError):
    """A model name that is neither a zoo variant nor a model folder (nor, in the app, a registry fine-tune)."""


def weights_available(name: str) -> bool:
    folder = zoo_dir() / name
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def missing_weights_text(name: str) -> str:
    """What to do about a zoo variant whose weights are not here."""
    return (
        f"no trained weights for {name!r} at {zoo_dir() / name}: train them with the pipeline "
        f"(`pocketworld train ...`, see README) and save them there, or point {ZOO_VARIABLE} at a folder "
        f"that holds {name}/{CONFIG_FILE} and {name}/{WEIGHTS_FILE}"
    )


def weights_dir(name: str) -> Path:
    """The folder of a zoo variant's trained weights, or WeightsNotAvailable saying how to get them."""
    zoo_config(name)  # unknown names fail here, listing the zoo
    if not weights_available(name):
        raise WeightsNotAvailable(missing_weights_text(name))
    return zoo_dir() / name


def model_dir(name_or_path: str | Path, role: str = "model") -> Path:
    """The folder holding config.json + model.safetensors for a model folder or a zoo variant.

    A folder that exists wins over a variant of the same name. Errors name `role` (e.g. "base model")
    so that each command's message says which of its arguments was wrong: UnknownModelError for a name
    that is neither, FileNotFoundError for a folder without the two files, WeightsNotAvailable for a
    variant whose weights are not here. Its config.json is parsed and bounded here (ConfigError naming
    the field), before anything builds a model from it."""
    path = Path(name_or_path)
    if path.is_dir():
        missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{role} {name_or_path}: the folder lacks {' and '.join(missing)}; a model folder "
                f"holds {CONFIG_FILE} + {WEIGHTS_FILE} (a zoo variant or a training run's model/)"
            )
        check_config_file(path / CONFIG_FILE)
        return path
    if str(name_or_path) in ZOO:
        folder = weights_dir(str(name_or_path))
        check_config_file(folder / CONFIG_FILE)
        return folder
    raise UnknownModelError(
        f"unknown {role} {str(name_or_path)!r}: name a zoo variant ({', '.join(ZOO)}) or a model "
        f"folder holding {CONFIG_FILE} + {WEIGHTS_FILE}"
    )


def adapter_fits(base: str | None, name_or_path: str | Path, folder: Path, config_name: str) -> bool:
    """Whether an adapter's base_model_name_or_path names this model: its zoo name, its Hub id's last
    part ('pocketworld/nano'), its config's name, or its folder."""
    if not base:
        return False
    if base in (str(name_or_path), config_name) or Path(base).name in (folder.name, config_name):
        return True
    base_path = Path(base)
    return base_path.exists() and base_path.resolve() == folder.resolve()


def load(name_or_path: str | Path, adapter: str | Path | None = None) -> WorldModel:
    """The model (eval mode) of a zoo variant or model folder, with a LoRA adapter merged into its
    dynamics when given: merged, so a fine-tune runs at its base model's speed.

    The adapter goes through finetune.lora.load_adapter (safetensors only, schema, every tensor's name
    and shape), the one adapter loader; its base must name this model."""
    folder = model_dir(name_or_path)
    model = WorldModel.from_pretrained(folder)
    if adapter is None:
        return model
    from finetune.lora import load_adapter, merge_adapter, read_adapter_config

    adapter = Path(adapter)
    base = read_adapter_config(adapter)["base_model_name_or_path"]
    if not adapter_fits(base, name_or_path, folder, model.config.name):
        raise ValueError(
            f"the adapter at {adapter} was trained on base {base!r}, not on {str(name_or_path)!r} "
            f"({model.config.name}); load it onto its own base model"
        )
    return merge_adapter(load_adapter(model, adapter)).eval()


def describe(name: str) -> dict:
    """Parameter counts (counted on the meta device: nothing is allocated) and availability."""
    with torch.device("meta"):
        counts = WorldModel(zoo_config(name)).parameter_counts()
    return {
        "name": name,
        "params_total": counts["total"],
        "params_tokenizer": counts["tokenizer"],
        "params_dynamics": counts["dynamics"],
        "params_decoder": counts["decoder"],
        "weights_available": weights_available(name),
    }


def describe_all() -> list[dict]:
    return [describe(name) for name in ZOO]
