"""A play session: the world model wrapped as a game you reset and step (as DIAMOND wraps its
world model as an environment). The app, the tests and the benchmarks drive only this API.

The session holds the recurrent dynamics state, the current frame and its tokens; every
step costs the same and the held state has the same size at frame 10 and frame 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.profiler import record_function

from core import actions as action_vocab
from core.engine import EngineConfig, prepare
from core.frames import check_frame, to_model, to_uint8
from core.world_model import WorldModel


@dataclass
class SamplingConfig:
    temperature: float = 0.0   # 0 = argmax (deterministic); > 0 samples from softmax(logits / T)
    top_k: int | None = None   # sample only among the k likeliest ids per position
    seed: int = 0              # seeds the sampler, so the same actions replay the same dream

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")


class WorldSession:
    def __init__(self, model: WorldModel, sampling: SamplingConfig | None = None, device: str | torch.device = "cpu",
                 engine: EngineConfig | None = None):
        """`engine` picks precision and decoder backend (core.engine); None plays `model` itself, as it is."""
        self.model = model.eval().to(device) if engine is None else prepare(model, engine, device)
        self.sampling = sampling or SamplingConfig()
        self.device = torch.device(device)
        self.frame_index = 0
        self._state = None
        self._tokens = None   # (1, S) ids of the current frame
        self._frame = None    # (1, 3, H, W) current frame in [-1, 1]
        self._generator = torch.Generator(device=self.device)

    @torch.inference_mode()
    def reset(self, first_frame: np.ndarray | None = None, *, seed: int | None = None,
              game: str = "platformer") -> np.ndarray:
        """Start a dream from `first_frame` ((256, 256, 3) uint8) or, given `seed`, from the first
        frame of that level of one of our games. Returns the starting frame."""
        size = self.model.config.image_size
        if first_frame is None:
            if seed is None:
                raise ValueError("reset needs a first_frame or a level seed")
            from core.games import first_frame as game_first_frame
            first_frame = game_first_frame(game, seed)
        frame = check_frame(first_frame, size)
        self._generator.manual_seed(self.sampling.seed if seed is None else seed)
        dtype = self.model.dynamics.token_embedding.weight.dtype  # bf16 in a bf16 session; int8 keeps it fp32
        self._frame = to_model(frame, self.device).to(dtype)
        self._tokens = self.model.tokenizer.encode(self._frame).flatten(1)
        self._state = self.model.dynamics.init_state(1, device=self.device, dtype=dtype)
        self.frame_index = 0
        return frame.copy()

    @torch.inference_mode()
    def step(self, action: int | str) -> np.ndarray:
        """Advance one frame under `action` (an id, a name like "LEFT+FIRE"); returns the new frame."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action_id = action_vocab.parse(action)
        # the labels name the parts in `pocketworld bench play --profile`; they cost nothing otherwise
        with record_function("dynamics"):
            # in place: the session owns its state, and reusing its buffers saves fresh memory every step
            logits, self._state = self.model.dynamics.step(
                self._tokens, torch.tensor([action_id], device=self.device), self._state, inplace=True)
        with record_function("sampling"):
            self._tokens = self._sample(logits)                              # (1, S)
        grid = self.model.config.tokenizer.grid_size
        with record_function("decoder"):
            self._frame = self.model.decoder(self._tokens.view(1, grid, grid), self._frame).clamp_(-1, 1)
        self.frame_index += 1
        return to_uint8(self._frame)[0]

    def state_numel(self) -> int:
        """Number of values the session holds between steps (constant over any number of steps)."""
        tensors = [self._tokens, self._frame, self._state.recent_actions]
        tensors += [t for layer in self._state.layers for t in (layer.conv, layer.ssm)]
        return sum(t.numel() for t in tensors)

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (1, S, V) -> ids (1, S)."""
        if self.sampling.temperature == 0:
            return logits.argmax(-1)
        logits = logits.float() / self.sampling.temperature
        if self.sampling.top_k is not None:
            kth = logits.topk(min(self.sampling.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1).flatten(0, 1)                               # (S, V)
        return torch.multinomial(probs, 1, generator=self._generator).view(1, -1)
