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
    temperature: float = 0.0  # 0 = argmax (deterministic); > 0 samples from softmax(logits / T)
    top_k: int | None = None  # sample only among the k likeliest ids per position
    seed: int = 0  # seeds the sampler, so the same actions replay the same dream

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")


class WorldSession:
    def __init__(
        self,
        model: WorldModel,
        sampling: SamplingConfig | None = None,
        device: str | torch.device = "cpu",
        engine: EngineConfig | None = None,
    ):
        """`engine` picks precision and decoder backend (core.engine); None plays `model` itself, as it is."""
        self.model = model.eval().to(device) if engine is None else prepare(model, engine, device)
        self.sampling = sampling or SamplingConfig()
        self.device = torch.device(device)
        self.frame_index = 0
        self._state = None
        self._tokens = None  # what the dynamics reads of the current frame: (1, S) ids or (1, 3, r, r) small frame
        self._frame = None  # (1, 3, H, W) current frame in [-1, 1]
        self._generator = torch.Generator(device=self.device)
        self.prediction = None

    @torch.inference_mode()
    def reset(
        self, first_frame: np.ndarray | None = None, *, seed: int | None = None, game: str = "platformer"
    ) -> np.ndarray:
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
        dtype = _float_dtype(self.model.dynamics)  # bf16 in a bf16 session; int8 keeps it fp32
        self._frame = to_model(frame, self.device).to(dtype)
        self._tokens = self.model.encode(self._frame)
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
            # a denoising dynamics draws its noise from the session's generator: a seeded dream replays; a motion
            # net may read the full frame it moves
            frames = self.model.config.family == "frames"
            sampled = {"generator": self._generator, "full": self._frame} if frames else {}
            logits, self._state = self.model.dynamics.step(
                self._tokens, torch.tensor([action_id], device=self.device), self._state, inplace=True, **sampled
            )
        self.prediction = logits  # the dynamics' own output (a frames model's small frame), for diagnostics
        with record_function("sampling"):
            self._tokens = self.model.choose(logits, self.sampling.temperature, self.sampling.top_k, self._generator)
        with record_function("decoder"):
            self._frame = self.model.render(self._tokens, self._frame)
            self._tokens = self.model.next_input(self._tokens, self._frame)
        self.frame_index += 1
        return to_uint8(self._frame)[0]

    def state_numel(self) -> int:
        """Number of values the session holds between steps (constant over any number of steps)."""
        tensors = [self._tokens, self._frame, *_tensors_of(self._state)]
        return sum(t.numel() for t in tensors)


def _tensors_of(state) -> list[torch.Tensor]:
    """Every tensor a dynamics state holds (Mamba layer states, past frames, recent actions)."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (list, tuple)):
        return [t for item in state for t in _tensors_of(item)]
    if hasattr(state, "__dataclass_fields__"):
        return [t for name in state.__dataclass_fields__ for t in _tensors_of(getattr(state, name))]
    return []


def _float_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (fp32 when it has none)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
