"""The model zoo on disk: where each variant's weights live and whether they are there.

Shipped weights sit in the repository's `zoo/<variant>/`, laid out like a Hub repo
(config.json + model.safetensors + README.md), so `WorldModel.from_pretrained` reads them
as it would a downloaded repo. `POCKETWORLD_ZOO` points elsewhere (e.g. a shared cache).
A variant without weights is reported as such; it is never played with random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from core.config import ZOO, zoo_config
from core.world_model import CONFIG_FILE, WEIGHTS_FILE, WorldModel


class WeightsNotAvailable(FileNotFoundError):
    """A zoo variant whose trained weights are not on this machine."""


def zoo_dir() -> Path:
    return Path(os.environ.get("POCKETWORLD_ZOO", Path(__file__).resolve().parent.parent / "zoo"))


def weights_available(name: str) -> bool:
    folder = zoo_dir() / name
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def weights_dir(name: str) -> Path:
    """The folder of a zoo variant's trained weights, or WeightsNotAvailable saying how to get them."""
    zoo_config(name)  # unknown names fail here, listing the zoo
    if not weights_available(name):
        raise WeightsNotAvailable(
            f"no trained weights for {name!r} at {zoo_dir() / name}: train them with the pipeline "
            f"(`pocketworld train ...`, see README) and save them there, or point POCKETWORLD_ZOO at a folder "
            f"that holds {name}/{CONFIG_FILE} and {name}/{WEIGHTS_FILE}")
    return zoo_dir() / name


def load(name: str) -> WorldModel:
    """The trained model of a zoo variant, or WeightsNotAvailable saying how to get it."""
    return WorldModel.from_pretrained(weights_dir(name))


def describe(name: str) -> dict:
    """Parameter counts (counted on the meta device: nothing is allocated) and availability."""
    with torch.device("meta"):
        counts = WorldModel(zoo_config(name)).parameter_counts()
    return {"name": name, "params_total": counts["total"], "params_tokenizer": counts["tokenizer"],
            "params_dynamics": counts["dynamics"], "params_decoder": counts["decoder"],
            "weights_available": weights_available(name)}


def describe_all() -> list[dict]:
    return [describe(name) for name in ZOO]
