"""What can be played: zoo variants with weights present, and registry fine-tunes whose base is.

A choice without weights stays in the list, marked, with the text that says how to get it;
choosing it gives that text, never a session with random weights. Names resolve and load
through core.zoo, as in evaluate and finetune.
Loaded models are shared by all sessions through a `ModelCache` the app owns (weights are
read-only during play; each session holds its own recurrent state).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from core import zoo
from core.config import ZOO
from core.world_model import WorldModel
from core.zoo import UnknownModelError

REGISTRY_PREFIX = "registry:"


@dataclass
class ModelChoice:
    value: str  # "nano", or "registry:owner/name" for a shared fine-tune
    label: str  # what the picker shows
    playable: bool
    how_to_get: str  # empty when playable


def zoo_choices() -> list[ModelChoice]:
    choices = []
    for row in zoo.describe_all():
        name, params = row["name"], f"{row['params_total'] / 1e6:.0f}M params"
        if row["weights_available"]:
            choices.append(ModelChoice(name, f"{name} ({params})", True, ""))
        else:
            choices.append(ModelChoice(name, f"{name} ({params}) - no weights", False, zoo.missing_weights_text(name)))
    return choices


def registry_choices(registry) -> list[ModelChoice]:
    """Fine-tunes in `registry` (finetune.registry's interface); playable when their base variant has weights."""
    choices = []
    for entry in registry.list():
        base = base_variant(entry.base_model)
        value = REGISTRY_PREFIX + entry.repo
        if base is None:
            choices.append(
                ModelChoice(
                    value,
                    f"{entry.repo} - unknown base",
                    False,
                    f"{entry.repo}: its card names base model {entry.base_model!r}, "
                    f"which is not one of the zoo's {', '.join(ZOO)}",
                )
            )
        elif zoo.weights_available(base):
            choices.append(ModelChoice(value, f"{entry.repo} (fine-tune of {base})", True, ""))
        else:
            choices.append(
                ModelChoice(
                    value,
                    f"{entry.repo} (fine-tune of {base}) - no base weights",
                    False,
                    f"{entry.repo} plays on {base}: {zoo.missing_weights_text(base)}",
                )
            )
    return choices


def all_choices(registry=None) -> list[ModelChoice]:
    return zoo_choices() + (registry_choices(registry) if registry is not None else [])


def check_model(value: str | None, registry=None) -> None:
    """An UnknownModelError listing the choices unless `value` (None: the default) is one of them.
    A known model without weights passes: the page then says how to get them."""
    values = [choice.value for choice in all_choices(registry)]
    if value is not None and value not in values:
        raise UnknownModelError(f"unknown model {value!r}; choose one of {', '.join(values)}")


def base_variant(base_model: str | None) -> str | None:
    """'pocketworld/nano', 'nano' or a path ending in nano -> 'nano'; None if it names no zoo variant."""
    if not base_model:
        return None
    name = base_model.rstrip("/").rsplit("/", 1)[-1]
    return name if name in ZOO else None


class ModelCache:
    """Loaded models by choice value, the `capacity` most recently used kept in memory."""

    def __init__(self, registry=None, capacity: int = 2):
        self.registry = registry
        self.capacity = capacity
        self._models: OrderedDict[str, WorldModel] = OrderedDict()
        self._lock = threading.Lock()  # two sessions picking the same model load it once

    def get(self, value: str) -> WorldModel:
        """The model for a choice value; zoo.WeightsNotAvailable (with how to get it) when absent."""
        with self._lock:
            if value in self._models:
                self._models.move_to_end(value)
                return self._models[value]
            model = self._load(value)
            self._models[value] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model

    def _load(self, value: str) -> WorldModel:
        if not value.startswith(REGISTRY_PREFIX):
            return zoo.load(zoo.weights_dir(value))  # the zoo's folder, even where the working dir has one of that name
        if self.registry is None:
            raise ValueError(f"{value!r} names a registry fine-tune, but this app has no registry")
        repo = value[len(REGISTRY_PREFIX) :]
        entry = self.registry.info(repo)
        base = base_variant(entry.base_model)
        if base is None:
            raise ValueError(f"{repo}: base model {entry.base_model!r} is not one of the zoo's {', '.join(ZOO)}")
        # checked as a fine-tune's adapter is, and merged: a fine-tune plays at its base's speed
        return zoo.load(zoo.weights_dir(base), adapter=self.registry.pull(repo))
