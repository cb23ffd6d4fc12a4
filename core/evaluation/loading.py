"""Checking that a model and the data `pocketworld evaluate` is asked to judge agree, before any long
work starts. (The model itself is found and loaded by core.zoo, as everywhere else.)
"""

from __future__ import annotations

from core.world_model import WorldModel


def check_compatible(model: WorldModel, episodes) -> None:
    """Raise ValueError if the data's frames or actions do not fit the model."""
    size = model.config.image_size
    for episode in episodes:
        if episode.frames.shape[1:] != (size, size, 3):
            raise ValueError(
                f"the data's frames are {episode.frames.shape[1:3]} but the model reads {size}x{size}; "
                f"evaluate on data recorded at the model's frame size"
            )
        top = int(episode.actions.max()) if len(episode.actions) else 0
        if top >= model.config.dynamics.num_actions or (len(episode.actions) and episode.actions.min() < 0):
            raise ValueError(
                f"the data uses action id {top} but the model knows {model.config.dynamics.num_actions} "
                f"actions (ids 0..{model.config.dynamics.num_actions - 1}); the action vocabularies differ"
            )
