"""An RL player: PPO (Schulman et al., 2017) on the games' ground-truth state vector.

Learning from the state vector instead of pixels is cheap (the games step without rendering,
the policy is a small MLP), and the reward asks for what the data needs: reaching new regions
of the level (+1 each, per episode), score (+0.1 a point), finishing (+5), dying (-1).
The loop follows CleanRL's ppo.py: GAE, clipped surrogate, value loss, entropy bonus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.actions import NUM_ACTIONS

REGION_SLOTS = 1024  # regions are counted modulo this, per env


@dataclass
class PPOConfig:
    num_envs: int = 32  # envs stepped together while training
    rollout: int = 64  # steps per env between updates
    epochs: int = 4  # passes over each rollout
    minibatch: int = 512  # samples per gradient step
    lr: float = 3e-4  # Adam learning rate
    gamma: float = 0.99  # discount
    lam: float = 0.95  # GAE lambda
    clip: float = 0.2  # PPO ratio clip
    entropy: float = 0.01  # entropy bonus weight
    hidden: int = 128  # MLP width
    max_steps: int = 900  # episode limit while training (30 s), shorter than collection's


class Policy(nn.Module):
    """State vector (B, D) -> action logits (B, 18) and value (B,), with fixed-after-training input scaling."""

    def __init__(self, state_dim: int, hidden: int = 128):
        super().__init__()
        self.register_buffer("mean", torch.zeros(state_dim))
        self.register_buffer("std", torch.ones(state_dim))
        self.body = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.to_logits = nn.Linear(hidden, NUM_ACTIONS)
        self.to_value = nn.Linear(hidden, 1)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(((state - self.mean) / self.std).clamp(-10, 10))  # (B, hidden)
        return self.to_logits(h), self.to_value(h).squeeze(-1)


class PPOAgent:
    """Plays with a trained Policy; `train` makes one, `save` / `load` keep it."""

    name = "rl"

    def __init__(self, policy: Policy, game_name: str, num_envs: int, seed: int = 0):
        self.policy, self.game_name, self.num_envs = policy.eval(), game_name, num_envs
        self.generator = torch.Generator().manual_seed(seed)

    def with_envs(self, num_envs: int, seed: int = 0) -> PPOAgent:
        return PPOAgent(self.policy, self.game_name, num_envs, seed)

    def reset(self, env_ids) -> None:
        """Stateless policy: nothing to forget between episodes."""

    @torch.no_grad()
    def act(self, game) -> np.ndarray:
        logits, _ = self.policy(torch.from_numpy(game.state_vector()))
        return torch.multinomial(logits.softmax(-1), 1, generator=self.generator).squeeze(1).numpy()

    def save(self, path) -> None:
        torch.save(
            {
                "game": self.game_name,
                "state_dim": self.policy.mean.numel(),
                "hidden": self.policy.to_value.in_features,
                "weights": self.policy.state_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path, num_envs: int, seed: int = 0) -> PPOAgent:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        policy = Policy(saved["state_dim"], saved["hidden"])
        policy.load_state_dict(saved["weights"], strict=True)
        return cls(policy, saved["game"], num_envs, seed)

    @classmethod
    def train(
        cls, game_name: str, steps: int, seed: int = 0, config: PPOConfig | None = None, progress: bool = True
    ) -> tuple[PPOAgent, list[dict]]:
        """Train on `steps` env steps of `game_name`; return the agent and per-update stats."""
        from tqdm.auto import tqdm

        from core.games import GAMES, GameConfig

        if game_name not in GAMES:
            raise ValueError(
                f"the RL agent learns from ground-truth state, which only built-in games have "
                f"({', '.join(GAMES)}); got {game_name!r}"
            )
        if steps <= 0:
            raise ValueError(f"RL training steps must be positive, got {steps}")
        cfg = config or PPOConfig()
        torch.manual_seed(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small MLP gains nothing from threads; shared 2-core machines lose a lot
        game = GAMES[game_name](GameConfig(num_envs=cfg.num_envs, max_steps=cfg.max_steps, render=False))
        next_seed = seed * 1_000_003
        game.reset(np.arange(next_seed, next_seed + cfg.num_envs))
        next_seed += cfg.num_envs
        state = game.state_vector()
        policy = Policy(state.shape[1], cfg.hidden)
        policy.mean.copy_(torch.from_numpy(state.mean(0)))
        policy.std.copy_(torch.from_numpy(state.std(0)).clamp(min=1.0))
        optimiser = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
        visited = np.zeros((cfg.num_envs, REGION_SLOTS), dtype=bool)
        visited[np.arange(cfg.num_envs), game.region() % REGION_SLOTS] = True
        history, updates = [], max(1, steps // (cfg.num_envs * cfg.rollout))
        bar = tqdm(range(updates), desc=f"PPO {game_name}", disable=not progress)
        try:
            for _ in bar:
                batch = _rollout(game, policy, cfg, visited, next_seed)
                next_seed = batch.pop("next_seed")
                history.append({"reward": float(batch["rewards"].sum() / cfg.num_envs), **batch.pop("stats")})
                _update(policy, optimiser, batch, cfg)
                bar.set_postfix(coverage=f"{history[-1]['coverage']:.1f}")
        finally:
            torch.set_num_threads(threads)
        return cls(policy, game_name, cfg.num_envs, seed), history


def _rollout(game, policy: Policy, cfg: PPOConfig, visited: np.ndarray, next_seed: int) -> dict:
    """Play cfg.rollout steps; return tensors for the update, with GAE advantages."""
    n, steps = cfg.num_envs, cfg.rollout
    states, actions, logps, values = [], [], [], []
    rewards, dones = np.zeros((steps, n), np.float32), np.zeros((steps, n), np.float32)
    coverage = []
    for t in range(steps):
        state = torch.from_numpy(game.state_vector())
        with torch.no_grad():
            logits, value = policy(state)
        dist = torch.distributions.Categorical(logits=logits)
        action = dist.sample()
        score = game.score.copy()
        _, done = game.step(action.numpy())
        region = game.region() % REGION_SLOTS
        new = ~visited[np.arange(n), region]
        visited[np.arange(n), region] = True
        died = done & ~game.won & (game.t < game.config.max_steps)
        rewards[t] = new + 0.1 * (game.score - score) + 5.0 * game.won - 1.0 * died
        dones[t] = done
        states.append(state), actions.append(action), logps.append(dist.log_prob(action)), values.append(value)
        if done.any():
            ids = np.flatnonzero(done)
            coverage.extend(visited[ids].sum(1).tolist())
            game.reset(np.arange(next_seed, next_seed + len(ids)), ids)
            next_seed += len(ids)
            visited[ids] = False
            visited[ids, game.region()[ids] % REGION_SLOTS] = True
    with torch.no_grad():
        _, last_value = policy(torch.from_numpy(game.state_vector()))
    values_t = torch.stack(values)  # (T, N)
    advantages = torch.zeros(steps, n)
    running = torch.zeros(n)
    for t in reversed(range(steps)):
        following = last_value if t == steps - 1 else values_t[t + 1]
        alive = 1.0 - torch.from_numpy(dones[t])
        delta = torch.from_numpy(rewards[t]) + cfg.gamma * following * alive - values_t[t]
        running = delta + cfg.gamma * cfg.lam * alive * running
        advantages[t] = running
    stats = {
        "coverage": float(np.mean(coverage)) if coverage else float(visited.sum(1).mean()),
        "episodes": len(coverage),
    }
    return {
        "states": torch.stack(states).flatten(0, 1),
        "actions": torch.stack(actions).flatten(),
        "logps": torch.stack(logps).flatten(),
        "advantages": advantages.flatten(),
        "returns": (advantages + values_t).flatten(),
        "rewards": rewards,
        "stats": stats,
        "next_seed": next_seed,
    }


def _update(policy: Policy, optimiser: torch.optim.Optimizer, batch: dict, cfg: PPOConfig) -> None:
    size = len(batch["actions"])
    for _ in range(cfg.epochs):
        for idx in torch.randperm(size).split(cfg.minibatch):
            logits, value = policy(batch["states"][idx])
            dist = torch.distributions.Categorical(logits=logits)
            ratio = (dist.log_prob(batch["actions"][idx]) - batch["logps"][idx]).exp()
            adv = batch["advantages"][idx]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv).mean()
            value_loss = 0.5 * (value - batch["returns"][idx]).pow(2).mean()
            loss = policy_loss + 0.5 * value_loss - cfg.entropy * dist.entropy().mean()
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optimiser.step()


__all__ = ["PPOAgent", "PPOConfig", "Policy"]
