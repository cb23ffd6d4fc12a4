"""Every model configuration in one place: the parts' dataclasses and the zoo (nano..large).

Configs are flat dataclasses with a comment per field. `build_dataclass` (used by
`WorldModelConfig.from_dict` and the training run configs) turns nested dicts back into
dataclasses, rejecting unknown fields and wrong types by name, so a malformed file is an
error that names the field, not a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from core.actions import NUM_ACTIONS


class ConfigError(ValueError):
    """A config (file or arguments) that cannot describe a PocketWorld model."""


@dataclass
class TokenizerConfig:
    image_size: int = 256  # input frames are image_size x image_size RGB
    channels: tuple[int, ...] = (32, 48, 64, 96)  # encoder width per stage at 64, 32, 16, 16 pixels (after a /4 stem)
    blocks_per_stage: int = 1  # extra inverted-residual blocks per encoder stage
    expand_ratio: int = 4  # MobileNetV2 inverted-residual expansion
    decoder_channels: tuple[int, ...] = (
        96,
        64,
        48,
        32,
    )  # tokenizer's own decoder at 16, 32, 64, 64; then a x4 pixel shuffle
    levels: tuple[int, ...] = (8, 8, 8)  # FSQ levels per latent dim; their product is the vocabulary

    def __post_init__(self):
        self.channels, self.decoder_channels, self.levels = (
            tuple(self.channels),
            tuple(self.decoder_channels),
            tuple(self.levels),
        )
        if len(self.channels) != 4 or len(self.decoder_channels) != 4:
            raise ConfigError("tokenizer channels and decoder_channels need 4 stages (256 -> 16)")
        if any(level < 2 for level in self.levels):
            raise ConfigError(f"FSQ levels must be >= 2, got {self.levels}")

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)

    @property
    def grid_size(self) -> int:
        return self.image_size // 16


@dataclass
class DynamicsConfig:
    vocab_size: int = 512  # token ids per position (the tokenizer's vocabulary)
    tokens_per_frame: int = 256  # 16 x 16 positions
    num_actions: int = NUM_ACTIONS  # the shared 18-action vocabulary
    d_model: int = 256  # hidden width
    n_layers: int = 6  # blocks of spatial attention + temporal Mamba + action cross-attention + MLP
    n_heads: int = 4  # attention heads (spatial and action cross-attention)
    mlp_ratio: float = 4.0  # MLP hidden width / d_model
    d_state: int = 16  # Mamba state size N per head channel
    expand: int = 2  # Mamba inner width / d_model
    headdim: int = 32  # Mamba head size P (nheads = expand * d_model / headdim)
    chunk_size: int = 8  # Mamba chunked-scan length for training
    action_dim: int = 64  # action embedding width
    action_context: int = 4  # how many recent actions each frame attends to

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if (self.expand * self.d_model) % self.headdim:
            raise ConfigError(f"expand*d_model {self.expand * self.d_model} is not divisible by headdim {self.headdim}")
        if self.action_context < 1:
            raise ConfigError("action_context must be >= 1")
        if math.isqrt(self.tokens_per_frame) ** 2 != self.tokens_per_frame:
            raise ConfigError(f"tokens_per_frame {self.tokens_per_frame} is not a square grid")
        if (self.d_model // self.n_heads) % 4:
            raise ConfigError(f"attention head size {self.d_model // self.n_heads} must be a multiple of 4 (2D rotary)")


@dataclass
class DecoderConfig:
    vocab_size: int = 512  # token ids it decodes
    token_dim: int = 64  # token embedding width at the 16x16 grid
    channels: tuple[int, ...] = (16, 24, 32, 64, 128)  # U-Net width at 256, 128, 64, 32, 16 pixels
    blocks: int = 1  # residual blocks per level on the way up

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if len(self.channels) != 5:
            raise ConfigError("decoder channels need 5 levels (256, 128, 64, 32, 16 pixels)")


# -- the frames family (nano v2): small pooled frames, a FiLM U-Net dynamics, an upsampling decoder --

ACTION_MODES = ("film", "input")


@dataclass
class FramePoolConfig:
    resolution: int = 64  # the small frame's size (the dynamics' resolution)


DECODINGS = ("square", "sprite", "outcome", "objects")  # how play picks the motion net's moves (MotionConfig.decode)


@dataclass
class MotionConfig:
    """A frames dynamics' motion net (core/frame_motion.py): it reads what the dynamics reads (the small frames and
    the keys) and picks, for each square of the full frame under one small-frame pixel, the whole-pixel move of the
    previous frame that makes it, or "redraw" (the dynamics' small frame, drawn by the upsampler, fills it)."""

    radius: int = 6  # the farthest move of a square each way, in full-frame pixels: (2 radius + 1)^2 moves
    channels: tuple[int, ...] = (32, 64, 128)  # its U-Net's width at the small resolution, /2, /4, ...
    mid_blocks: int = 2  # residual blocks at the coarsest level
    hidden: int = 64  # width of the head that scores the moves of each square
    # > 0: it also reads the current full frame (of this size: the model's image_size), each square's pixels as
    # channels of its small-frame pixel (space-to-depth): a small sprite's 2-3 px step is a fraction of a pixel of
    # the small frames. Its input starts at zero, so a net grown with it starts as it was
    full_frame: int = 0
    # how play picks the moves: "square", each square its likeliest; "sprite", squares that move and touch (8-way)
    # take the move likeliest over them all, unless a square's own likeliest is `sprite_margin` nats likelier than
    # it (an object that moves otherwise). A sprite's 1.5 px/frame step is 1 px or 2 px, which its squares cannot
    # tell apart; chosen square by square, they tear it. "outcome": each square first keeps its pixels or changes
    # by which is likelier summed over every move that makes it (FrameMotion.likeliest_outcome), then "sprite".
    # "objects": the previous frame's colour segments each move whole, by the move their pixels' squares find
    # likeliest together (core/frame_objects.py)
    decode: str = "sprite"
    sprite_margin: float = 2.0
    # False: play never redraws a square (it takes its likeliest move instead), so the denoiser and the upsampler
    # never run; for a net whose redrawn squares come out worse than moved ones
    redraw: bool = True
    # nats added to "stay" before play picks: the loss weighs squares that move 1 + motion_moving_weight, which
    # makes a net move squares that stay (a static wall square moved once is torn for the rest of play)
    stay_bias: float = 0.0
    # > 0: a sprite memory of this many sprites (core/sprite_memory.py, filled by `pocketworld sprites`): play by
    # objects puts a remembered sprite down where "redraw" is likelier than `appear` (a sword swung, a bullet
    # fired), so what a key makes appear is drawn sharply; 0: play by objects never draws anything new
    sprites: int = 0
    sprite_size: int = 16  # the largest sprite the memory holds, in full-frame pixels each way
    appear: float = 0.8

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.sprites < 0 or not 4 <= self.sprite_size <= 64:
            raise ConfigError(
                f"dynamics.motion.sprites must be >= 0 and sprite_size 4 to 64, got {self.sprites}, {self.sprite_size}"
            )
        if not 0 < self.appear < 1:
            raise ConfigError(f"dynamics.motion.appear must be a probability between 0 and 1, got {self.appear}")
        if self.decode not in DECODINGS:
            raise ConfigError(f"dynamics.motion.decode must be one of {', '.join(DECODINGS)}, got {self.decode!r}")
        if self.sprite_margin < 0:
            raise ConfigError(f"dynamics.motion.sprite_margin must be >= 0, got {self.sprite_margin}")
        if self.stay_bias < 0:
            raise ConfigError(f"dynamics.motion.stay_bias must be >= 0 nats, got {self.stay_bias}")
        if not 1 <= self.radius <= 16:
            raise ConfigError(f"dynamics.motion.radius must be 1 to 16 pixels, got {self.radius}")
        if self.hidden < 1 or self.mid_blocks < 0:
            raise ConfigError("dynamics.motion.hidden must be >= 1, mid_blocks >= 0")
        if not self.channels:
            raise ConfigError("dynamics.motion.channels must name at least one level")


def _check_unet(channels: tuple[int, ...], resolution: int, where: str) -> None:
    """A keyed U-Net's widths (core/keyed_unet.py) at `resolution` and each halving: group norm needs multiples of
    8, and the resolution must halve once per level below the first."""
    if not channels or resolution % 2 ** (len(channels) - 1):
        raise ConfigError(
            f"resolution {resolution} must divide by 2^(levels - 1) = {2 ** max(len(channels) - 1, 0)} "
            f"({where}: {channels})"
        )
    if any(c % 8 for c in channels):
        raise ConfigError(f"{where} must be multiples of 8 (group norm), got {channels}")


@dataclass
class FrameDynamicsConfig:
    resolution: int = 64  # internal frame size (frames are area-pooled to it)
    context: int = 2  # past frames it sees (2 give position and velocity)
    channels: tuple[int, ...] = (32, 64, 128)  # U-Net width at resolution, /2, /4, ...
    mid_blocks: int = 2  # residual blocks at the coarsest level
    action_mode: str = "film"  # film (every block) or input (first features only)
    action_context: int = 4  # recent keys embedded (the current one first)
    action_dim: int = 64  # key embedding width
    num_actions: int = NUM_ACTIONS  # the shared 18-action vocabulary
    # 0: predict the next frame directly (the mean of what may come: a sprite whose next place is uncertain
    # blurs, and the blur compounds in play); N > 0: a denoiser of the next frame, sampled in N steps (DIAMOND)
    denoise_steps: int = 0
    # a denoiser that is told the noise level of its context frames (GameNGen's noise augmentation): it learns on
    # real frames under noise of a known level (frames.context_noise), so it can tell how far to trust them; play
    # adds play_context_noise to its own frames and says so, which puts them among what it learnt to correct
    context_level: bool = False
    play_context_noise: float = 0.0
    # a motion net beside the denoiser: play moves the previous frame's pixels where it can, and redraws only where
    # it cannot (a sprite moved stays itself, and the denoiser and upsampler run only for a frame that needs them)
    motion: MotionConfig | None = None

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if not 0 <= self.denoise_steps <= 50:
            raise ConfigError(f"dynamics.denoise_steps must be 0 (no denoiser) to 50, got {self.denoise_steps}")
        if self.context_level and not self.denoise_steps:
            raise ConfigError("dynamics.context_level needs a denoiser (dynamics.denoise_steps > 0)")
        if not 0 <= self.play_context_noise <= 1 or (self.play_context_noise and not self.context_level):
            raise ConfigError(
                "dynamics.play_context_noise must be 0 to 1, and above 0 only with dynamics.context_level: true, "
                f"got {self.play_context_noise}"
            )
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(f"action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}")
        _check_unet(self.channels, self.resolution, "channels")
        if self.context < 1 or self.action_context < 1:
            raise ConfigError("context and action_context must be >= 1")
        if self.num_actions != NUM_ACTIONS:
            raise ConfigError(f"num_actions must be {NUM_ACTIONS} (the shared action vocabulary)")
        if isinstance(self.motion, dict):
            self.motion = build_dataclass(MotionConfig, self.motion, "dynamics.motion")
        if self.motion is not None and self.motion.full_frame % self.resolution:
            raise ConfigError(
                f"dynamics.motion.full_frame {self.motion.full_frame} must be 0 or a multiple of resolution "
                f"{self.resolution}"
            )
        if self.motion is not None:
            _check_unet(self.motion.channels, self.resolution, "motion.channels")


WARPS = ("none", "free", "gated")
BASES = ("previous", "blend")


@dataclass
class UpsamplerConfig:
    resolution: int = 64  # size of the small frames it takes
    image_size: int = 256  # size of the frames it makes
    channels: tuple[int, ...] = (16, 24, 48)  # width at image_size, /2, ... down to resolution
    blocks: int = 2  # residual blocks at the small resolution
    # also predict a motion field and draw the previous frame moved by it (a rigid sprite moved stays crisp):
    # "free" anywhere, "gated" only near where the small frame changed (the still background cannot bend), or "none"
    warp: str = "none"
    # what the predicted change is added to: the previous frame ("previous"), or that frame with the small frame
    # scaled up in its place wherever the small frame changed ("blend"): a moved sprite starts from a blurred copy
    # of itself where it now is, not from the background
    base: str = "previous"

    def __post_init__(self):
        self.channels = tuple(self.channels)
        levels = self.image_size // self.resolution
        if self.image_size % self.resolution or 2 ** int(math.log2(levels)) != levels:
            raise ConfigError(f"image_size {self.image_size} must be resolution {self.resolution} times a power of 2")
        if len(self.channels) != int(math.log2(levels)) + 1:
            raise ConfigError(
                f"upsampler channels need {int(math.log2(levels)) + 1} levels "
                f"({self.image_size} down to {self.resolution}), got {len(self.channels)}"
            )
        if any(c % 8 for c in self.channels):
            raise ConfigError(f"upsampler channels must be multiples of 8 (group norm), got {self.channels}")
        if self.warp not in WARPS:
            raise ConfigError(f"decoder.warp must be one of {', '.join(WARPS)}, got {self.warp!r}")
        if self.base not in BASES:
            raise ConfigError(f"decoder.base must be one of {', '.join(BASES)}, got {self.base!r}")


FAMILIES = {
    "tokens": {"tokenizer": TokenizerConfig, "dynamics": DynamicsConfig, "decoder": DecoderConfig},
    "frames": {"tokenizer": FramePoolConfig, "dynamics": FrameDynamicsConfig, "decoder": UpsamplerConfig},
}


@dataclass
class WorldModelConfig:
    name: str = "custom"  # zoo variant or a user's name for it
    image_size: int = 256  # frames are image_size x image_size RGB
    fps: int = 30  # the logical frame rate the model was trained at
    # tokens: FSQ token ids, a Mamba dynamics over them and a token decoder (nano v1);
    # frames: area-pooled small frames, a FiLM U-Net dynamics and an upsampler (nano v2)
    family: str = "tokens"
    # the three parts' configs, of the family's classes (FAMILIES); dicts are built into them
    tokenizer: TokenizerConfig | FramePoolConfig | dict = field(default_factory=TokenizerConfig)
    dynamics: DynamicsConfig | FrameDynamicsConfig | dict = field(default_factory=DynamicsConfig)
    decoder: DecoderConfig | UpsamplerConfig | dict = field(default_factory=DecoderConfig)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ConfigError(f"family: unknown model family {self.family!r}; expected one of {sorted(FAMILIES)}")
        for name, cls in FAMILIES[self.family].items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, build_dataclass(cls, value, name))
            elif not isinstance(value, cls):
                raise ConfigError(
                    f"{name}: a {self.family}-family model needs a {cls.__name__}, got {type(value).__name__}"
                )
        if self.family == "frames":
            sizes = {self.tokenizer.resolution, self.dynamics.resolution, self.decoder.resolution}
            if len(sizes) != 1:
                raise ConfigError(
                    f"the small frame's size differs between tokenizer, dynamics and decoder: "
                    f"{self.tokenizer.resolution}, {self.dynamics.resolution}, {self.decoder.resolution}"
                )
            if self.decoder.image_size != self.image_size:
                raise ConfigError("decoder.image_size must equal image_size")
            motion = self.dynamics.motion
            if motion is not None and motion.full_frame not in (0, self.image_size):
                raise ConfigError(f"dynamics.motion.full_frame must be 0 or image_size ({self.image_size})")
            return
        vocab = self.tokenizer.vocab_size
        if self.dynamics.vocab_size != vocab or self.decoder.vocab_size != vocab:
            raise ConfigError(
                f"vocabulary sizes disagree: tokenizer {vocab}, dynamics {self.dynamics.vocab_size}, "
                f"decoder {self.decoder.vocab_size}"
            )
        if self.tokenizer.image_size != self.image_size:
            raise ConfigError("tokenizer.image_size must equal image_size")
        if self.tokenizer.grid_size**2 != self.dynamics.tokens_per_frame:
            raise ConfigError(
                f"tokens_per_frame {self.dynamics.tokens_per_frame} does not match the tokenizer's "
                f"{self.tokenizer.grid_size}x{self.tokenizer.grid_size} grid"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> WorldModelConfig:
        return build_dataclass(cls, data)


def build_dataclass(cls, data: Any, where: str = "config"):
    """Dataclass `cls` from a parsed JSON/YAML mapping. Unknown fields are errors that name
    them, and every value is checked against its field's type (nested dataclasses, lists,
    tuples, optionals), so a malformed file fails here rather than deep inside a model."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; expected {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {
        name: _coerce(hints[name], value, name if where == "config" else f"{where}.{name}")
        for name, value in data.items()
    }
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def _coerce(hint, value, where: str):
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where)
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, where)
    origin = typing.get_origin(hint)
    if origin is list:
        items = value if isinstance(value, list) else [value]  # one path may be given bare
        return [_coerce(args[0], item, where) for item in items]
    if origin is tuple:  # tuple[X, ...]: JSON and YAML hold it as a list
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], item, where) for item in value)
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _frames_variant(
    name: str,
    resolution: int,
    channels: tuple[int, ...],
    mid_blocks: int,
    motion_channels: tuple[int, ...],
    motion_mid_blocks: int,
    hidden: int,
    upsampler: tuple[int, ...],
    upsampler_blocks: int,
    action_dim: int,
) -> WorldModelConfig:
    """A frames-family variant as the controllability lab chose it for nano (README "bench control", "Play by
    objects"): `resolution`^2 area-pooled frames, a keyed U-Net denoising the next one in 2 Euler steps with its
    context's noise level told, a motion net of its own keyed U-Net reading the full frame too, whose moves play
    takes segment by segment ("objects", nothing redrawn, a nat for "stay"), and an upsampler to 256x256."""
    return WorldModelConfig(
        name=name,
        family="frames",
        tokenizer=FramePoolConfig(resolution=resolution),
        dynamics=FrameDynamicsConfig(
            resolution=resolution,
            context=2,
            channels=channels,
            mid_blocks=mid_blocks,
            action_mode="film",
            action_context=4,
            action_dim=action_dim,
            denoise_steps=2,  # nano trained sampling in 3; 2 follow the keys as well (bench keys) for a third less time
            context_level=True,
            motion=MotionConfig(
                radius=6,
                channels=motion_channels,
                mid_blocks=motion_mid_blocks,
                hidden=hidden,
                decode="objects",
                redraw=False,
                full_frame=256,
                stay_bias=1.0,
            ),
        ),
        decoder=UpsamplerConfig(resolution=resolution, image_size=256, channels=upsampler, blocks=upsampler_blocks),
    )


# The zoo. Parameter counts are tested (tests/test_config.py) and printed by `pocketworld zoo`. Every variant is
# the frames family; the tokens family (nano v1's design: a VQ tokenizer, a Mamba + attention dynamics over 256
# tokens a frame) stays for configs that name it.
HUB_ORGANISATION = "pocketworld"  # the zoo's variants on the Hugging Face Hub: pocketworld/nano, ...
ZOO: dict[str, WorldModelConfig] = {
    # nano (v2): the dynamics works on 64x64 area-pooled frames (a 64x64 frame costs a small U-Net pass where 256
    # tokens cost six attention + Mamba blocks), the keys FiLM every block, and it denoises the next small frame in
    # Euler steps (a direct prediction is the mean of the possible next frames: the player smears); the upsampler
    # draws 256x256 from it and the previous frame. A motion net moves the previous frame's pixels and would call
    # those two only for squares it redraws; nano's never redraws (sharp sprites, and a step that costs one small
    # U-Net): the previous frame's colour segments move whole (README "Play by objects"), since the upsampler's
    # drawing of what is new tore more than no new thing did (README "Choosing the moves as sprites"); it reads the
    # full frame too, and "stay" gets a nat (README "The motion net on a GPU"). configs/nano-v2/ trains it.
    "nano": _frames_variant("nano", 64, (32, 64, 128), 2, (32, 64, 128), 2, 64, (16, 24, 48), 2, action_dim=64),
    # the larger variants scale the same design: wider U-Nets, and (base, large) 128x128 small frames, so that the
    # motion net scores moves of 2x2 squares where nano's are 4x4 (a square holds parts of fewer things)
    "tiny": _frames_variant("tiny", 64, (256, 512, 1024), 3, (256, 512, 1024), 2, 128, (32, 64, 128), 2, 128),
    "base": _frames_variant("base", 128, (256, 512, 1024, 1536), 2, (256, 512, 1024, 1536), 2, 128, (64, 128), 2, 128),
    "large": _frames_variant(
        "large", 128, (384, 768, 1536, 2048), 3, (384, 768, 1536, 2048), 2, 192, (96, 192), 3, 128
    ),
}


def zoo_config(name: str) -> WorldModelConfig:
    """A fresh copy of a zoo variant's config; an unknown name lists the valid ones."""
    if name not in ZOO:
        raise ConfigError(f"unknown variant {name!r}; the zoo has: {', '.join(ZOO)}")
    return WorldModelConfig.from_dict(ZOO[name].to_dict())
