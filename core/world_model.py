"""The world model: tokenizer + dynamics + frame decoder, saved and loaded like a Hub repo.

Two families share this class and its file layout (config.json's `family`):
- tokens (nano v1): frames -> FSQ token ids -> a Mamba dynamics over ids -> a token decoder;
- frames (nano v2): frames -> area-pooled small frames -> a FiLM U-Net dynamics that predicts
  the next small frame -> an upsampler that draws it at full size from the previous frame.
Play and evaluation drive either through `encode`, `dynamics.step`, `choose` and `render`, so
a session never asks which family it holds.

`save_pretrained` / `push_to_hub` come from huggingface_hub's `PyTorchModelHubMixin`
(config.json + model.safetensors + a README card). Loading is our own, because the mixin
rebuilds nested configs shallowly, ignores unknown keys and loads non-strictly: here a
malformed config.json, a missing or unexpected tensor, or a tensor of the wrong shape (the
weights of another variant) is an error that names what is wrong. Weights are read only
from safetensors, never unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.atomic import atomic_write
from core.config import HUB_ORGANISATION, ZOO, ConfigError, WorldModelConfig
from core.decoder import FrameDecoder
from core.dynamics import Dynamics
from core.frame_codec import FramePool, FrameUpsampler
from core.frame_dynamics import FrameDynamics
from core.frame_motion import FramePrediction
from core.tokenizer import Tokenizer

PARTS = {"tokens": (Tokenizer, Dynamics, FrameDecoder), "frames": (FramePool, FrameDynamics, FrameUpsampler)}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STORAGE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class WeightsError(ValueError):
    """Weights that do not fit the model described by the config (missing, unexpected, wrong shape)."""


class WorldModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="pocketworld",
    tags=["world-model", "pocketworld", "game"],
    license="mit",
    repo_url="https://github.com/pocketworld/pocketworld",
):
    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = config
        tokenizer, dynamics, decoder = PARTS[config.family]
        self.tokenizer = tokenizer(config.tokenizer)
        self.dynamics = dynamics(config.dynamics)
        self.decoder = decoder(config.decoder)

    # -- one frame step, for either family ------------------------------------------------
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W) in [-1, 1] -> what the dynamics reads: token ids (B, S) or small frames (B, 3, r, r)."""
        if self.config.family == "frames":
            return self.tokenizer.encode(frames)
        return self.tokenizer.encode(frames).flatten(1)

    def choose(
        self,
        output: torch.Tensor,
        temperature: float = 0.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The dynamics' output for one frame -> the next frame's input: token logits (B, S, V) -> ids (B, S),
        the likeliest (temperature 0) or sampled; a predicted small frame (or FramePrediction) is taken as it is
        (clamped)."""
        if isinstance(output, FramePrediction):
            return output.clamped()
        if self.config.family == "frames":
            return output.clamp(-1, 1)
        if temperature == 0:
            return output.argmax(-1)
        logits = output.float() / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1).flatten(0, 1)  # (B*S, V)
        return torch.multinomial(probs, 1, generator=generator).view(output.shape[:2])

    def round_trip(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the encoding keeps of a frame: `encode`'s output -> frames (B, 3, H, W) drawn from it alone."""
        if self.config.family == "frames":
            return self.tokenizer.decode(inputs, self.config.image_size).clamp(-1, 1)
        grid = self.config.tokenizer.grid_size
        return self.tokenizer.decode(inputs.view(-1, grid, grid)).clamp(-1, 1)

    def render(self, inputs: torch.Tensor, prev_frames: torch.Tensor) -> torch.Tensor:
        """The next frame's ids (B, S), small frame (B, 3, r, r) or FramePrediction + the previous frames
        (B, 3, H, W) -> frames."""
        if isinstance(inputs, FramePrediction):
            return self.dynamics.motion.draw(inputs, prev_frames, self.decoder).clamp(-1, 1)
        if self.config.family == "tokens":
            grid = self.config.tokenizer.grid_size
            inputs = inputs.view(-1, grid, grid)
        return self.decoder(inputs, prev_frames).clamp(-1, 1)

    def next_input(self, chosen: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """What the dynamics reads next, after `render` drew `frame` from `chosen`: the chosen token ids, or for
        the frames family the drawn frame pooled again, so that the upsampler (trained to draw crisp frames
        from predicted ones) cleans the dynamics' blur every step instead of letting it compound."""
        return self.encode(frame) if self.config.family == "frames" else chosen

    def parameter_counts(self) -> dict[str, int]:
        counts = {
            part: sum(p.numel() for p in getattr(self, part).parameters())
            for part in ("tokenizer", "dynamics", "decoder")
        }
        return {"total": sum(counts.values()), **counts}

    # -- saving --------------------------------------------------------------------------
    def save_pretrained(self, save_directory, *, dtype: str = "fp32", **kwargs):
        """Write config.json + model.safetensors (weights stored as `dtype`: fp32, fp16 or bf16)."""
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"unknown storage dtype {dtype!r}; choose one of {', '.join(STORAGE_DTYPES)}")
        self._storage_dtype = STORAGE_DTYPES[dtype]
        return super().save_pretrained(save_directory, config=self.config, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        dtype = getattr(self, "_storage_dtype", torch.float32)
        tensors = {
            k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
            for k, v in self.state_dict().items()
        }
        atomic_write(Path(save_directory) / WEIGHTS_FILE, lambda path: save_file(tensors, path))

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str = "cpu",
    ) -> WorldModel:
        """Load from a local folder or a Hub repo id, strictly; the model comes back in eval mode, fp32."""
        config_path = _resolve(pretrained_model_name_or_path, CONFIG_FILE, revision, cache_dir, local_files_only, token)
        weights_path = _resolve(
            pretrained_model_name_or_path, WEIGHTS_FILE, revision, cache_dir, local_files_only, token
        )
        model = cls(load_config(config_path))
        load_weights(model, weights_path)
        return model.to(map_location).eval()


def load_config(path: str | Path) -> WorldModelConfig:
    from core.config_bounds import check_config_file

    data = check_config_file(path)  # NaN, deep nesting, absurd sizes: refused before anything is built
    try:
        return WorldModelConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_weights(
    model: nn.Module,
    path: str | Path,
    parts: Iterable[str] | None = None,
    grown: Iterable[str] = (),
    adapt: Callable[[dict], dict] | None = None,
) -> None:
    """Copy the tensors of a safetensors file into `model` (only those of the submodules named in `parts`,
    if given); any mismatch is a WeightsError naming the key. Submodules named in `grown` may be missing from
    the file: they keep their initial weights (parts added to a trained model, made to start as a no-op).
    `adapt` rewrites the tensors read before they are checked (a motion head widened to more moves)."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    if adapt is not None:
        tensors = adapt(tensors)
    expected = model.state_dict()
    if parts is not None:
        prefixes = tuple(f"{part}." for part in parts)
        tensors = {k: v for k, v in tensors.items() if k.startswith(prefixes)}
        expected = {k: v for k, v in expected.items() if k.startswith(prefixes)}
    grown = tuple(f"{name}." for name in grown)
    missing = sorted(k for k in set(expected) - set(tensors) if not (grown and k.startswith(grown)))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: weights do not match the config: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )
    for key, tensor in tensors.items():
        if tensor.shape != expected[key].shape:
            raise WeightsError(
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)} but the config needs "
                f"{tuple(expected[key].shape)} (are these the weights of another variant?)"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=parts is None and not grown)


def _resolve(name_or_path, filename, revision, cache_dir, local_files_only, token) -> str:
    if os.path.isdir(name_or_path):
        path = Path(name_or_path) / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: a PocketWorld model folder holds {CONFIG_FILE} and {WEIGHTS_FILE}"
            )
        return str(path)
    if os.path.exists(name_or_path):
        raise FileNotFoundError(
            f"{name_or_path} is a file; pass the model's folder (with {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    shipped = _shipped_variant(str(name_or_path))
    if shipped is not None and revision is None:  # the same files as the Hub's, already installed
        return str(shipped / filename)
    try:
        return hf_hub_download(
            repo_id=str(name_or_path),
            filename=filename,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, HFValidationError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(
            f"{name_or_path!r} is not a model folder here, and its {filename} could not be fetched from the "
            f"Hugging Face Hub ({type(err).__name__}: {reason}). Pass a folder holding {CONFIG_FILE} + "
            f"{WEIGHTS_FILE}, a zoo variant ({', '.join(ZOO)}), or a Hub repo id you can reach"
        ) from None


def _shipped_variant(name: str) -> Path | None:
    """The installed weights folder of a zoo variant named as such ("nano") or by its Hub id ("pocketworld/nano"),
    or None when the name is neither or that variant's weights are not installed."""
    from core.zoo import weights_available, zoo_dir  # core.zoo imports this module

    variant = name.removeprefix(f"{HUB_ORGANISATION}/")
    if variant in ZOO and weights_available(variant):
        return zoo_dir() / variant
    return None
