"""Training an inverse-dynamics model on recorded play, with its accuracy on held-out levels.

Transitions come from the shards' training split; the accuracy reported with the saved IDM
is measured on another split (levels it never saw), so the number that later judges
generated frames is itself known to be trustworthy (or not) on real play.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.evaluation.effects import label_kind, visible_actions
from core.evaluation.episodes import Episode, load_episodes
from core.evaluation.idm import IDMConfig, InverseDynamics, from_pooled, pool_frames, score


@dataclass
class IDMTrainConfig:
    steps: int = 1500  # optimiser steps
    batch: int = 32  # transitions per step
    lr: float = 2e-3  # AdamW learning rate (cosine-decayed to 0)
    weight_decay: float = 1e-4  # AdamW weight decay
    seed: int = 0  # initialisation and batch order


class Transitions:
    """Every (frame t, frame t+1, visible action, commanded action) of some episodes; frames are
    held pooled (as the IDM reads them, uint8), so a training step does no image work."""

    def __init__(self, episodes: list[Episode], model: InverseDynamics):
        pool = model.config.pool
        if any(e.pooled not in (0, pool) for e in episodes):
            raise ValueError(f"episodes pooled by {sorted({e.pooled for e in episodes})}, the IDM pools by {pool}")
        # per episode (T, 3, h, w) uint8
        self.frames = [torch.from_numpy(e.frames if e.pooled else _pooled(e.frames, pool)) for e in episodes]
        index, labels, commanded = [], [], []
        for e, episode in enumerate(episodes):
            count = len(episode.frames) - 1
            index.append(np.stack([np.full(count, e), np.arange(count)], 1))
            commanded.append(episode.actions[:count])
            labels.append(
                visible_actions(
                    episode.meta["game"], episode.actions[:count], episode.state, episode.meta.get("state_layout", {})
                )
            )
        self.index = np.concatenate(index)  # (N, 2) episode, frame
        self.labels, self.commanded = np.concatenate(labels), np.concatenate(commanded)

    def __len__(self) -> int:
        return len(self.index)

    def pairs(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepared frames (b, 3, h, w) before and after for the given rows."""
        before = from_pooled(torch.stack([self.frames[e][t] for e, t in self.index[rows]]))
        after = from_pooled(torch.stack([self.frames[e][t + 1] for e, t in self.index[rows]]))
        return before, after


def _pooled(frames: np.ndarray, pool: int, chunk: int = 256) -> np.ndarray:
    return np.concatenate([pool_frames(frames[i : i + chunk], pool) for i in range(0, len(frames), chunk)])


def train_idm(
    sources,
    *,
    train_split: str = "train",
    eval_split: str = "test",
    config: IDMTrainConfig | None = None,
    idm_config: IDMConfig | None = None,
    pool: int = IDMConfig.pool,
    progress: bool = True,
) -> tuple[InverseDynamics, dict]:
    """Train on `train_split` of the shards at `sources`, score on `eval_split`; returns the model
    and its info (game, splits, seeds, held-out accuracy and confusion) for save_idm. Frames are pooled
    as the shards are read: the recording's full frames are never all in memory."""
    pool = idm_config.pool if idm_config else pool
    train_episodes = load_episodes(sources, train_split, pool=pool)
    heldout_episodes = load_episodes(sources, eval_split, pool=pool)
    model, info = fit_idm(
        train_episodes, heldout_episodes, config=config, idm_config=idm_config, pool=pool, progress=progress
    )
    return model, {**info, "train_split": train_split, "eval_split": eval_split}


def fit_idm(
    train_episodes: list[Episode],
    heldout_episodes: list[Episode],
    *,
    config: IDMTrainConfig | None = None,
    idm_config: IDMConfig | None = None,
    pool: int = IDMConfig.pool,
    progress: bool = True,
) -> tuple[InverseDynamics, dict]:
    """Train an IDM on the transitions of `train_episodes` (one game), score it on `heldout_episodes`;
    without an idm_config, one for their game and frame size that pools frames by `pool`."""
    config = config or IDMTrainConfig()
    games = {e.meta["game"] for e in train_episodes + heldout_episodes}
    if len(games) != 1:
        raise ValueError(
            f"an IDM learns one game, but the data holds {', '.join(sorted(games))}; pass the shards of one game"
        )
    game = games.pop()
    first = train_episodes[0]
    size = first.frames.shape[-1] * first.pooled if first.pooled else first.frames.shape[1]
    idm_config = idm_config or IDMConfig(game=game, image_size=size, pool=pool)
    torch.manual_seed(config.seed)
    model = InverseDynamics(idm_config)
    train, heldout = Transitions(train_episodes, model), Transitions(heldout_episodes, model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.steps)
    rng = np.random.default_rng(config.seed)
    model.train()
    bar = tqdm(range(config.steps), desc="idm train", unit="step", disable=not progress)
    for _ in bar:
        rows = rng.integers(0, len(train), config.batch)
        before, after = train.pairs(rows)
        loss = F.cross_entropy(model(before, after), torch.from_numpy(train.labels[rows]))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    report = evaluate_on(model, heldout, progress=progress)
    info = {
        "game": game,
        "train_transitions": len(train),
        "train_seeds": sorted({e.meta["seed"] for e in train_episodes}),
        "eval_seeds": sorted({e.meta["seed"] for e in heldout_episodes}),
        "labels": label_kind(game, train_episodes[0].meta.get("state_layout", {})),
        "heldout": report.to_dict(),
        "train": asdict(config),
    }
    return model.eval(), info


def evaluate_on(model: InverseDynamics, transitions: Transitions, batch: int = 64, progress: bool = False):
    """IDMReport of `model` on labelled real transitions."""
    predicted = []
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(transitions), batch), desc="idm eval", disable=not progress):
            before, after = transitions.pairs(np.arange(start, min(start + batch, len(transitions))))
            predicted.append(model(before, after).argmax(-1).numpy())
    return score(np.concatenate(predicted), transitions.labels, transitions.commanded)
