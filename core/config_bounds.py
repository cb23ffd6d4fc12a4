"""Bounds on a user's config.json, checked before a model is built from it.

A config.json is user input (a model folder, a fine-tune's adapter). Python's json accepts NaN,
Infinity and nesting deep enough to overflow the parser's stack, and a dataclass builds whatever
sizes it is given: `n_heads: 0` is a ZeroDivisionError in the checks that follow, and
`d_model: 1048576` asks for terabytes. `read_json` parses a file with those refused; `check_sizes`
holds every size field of a parsed model config to a range that covers the zoo's largest variant
with room to spare. Both raise ConfigError naming the file or field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.config import ConfigError

MAX_JSON_BYTES = 1 << 20  # a model or adapter config is a few hundred bytes
MAX_DEPTH = 8  # a model config nests its sections two levels deep

# field (in any section): the least and most it may be. The zoo's largest variant has d_model 1280,
# 20 layers, 20 heads and expand 3.
SIZE_BOUNDS: dict[str, tuple[float, float]] = {
    "image_size": (16, 1024),
    "resolution": (4, 1024),
    "fps": (1, 240),
    "d_model": (4, 4096),
    "n_layers": (1, 64),
    "n_heads": (1, 64),
    "mlp_ratio": (0.25, 16),
    "d_state": (1, 256),
    "expand": (1, 8),
    "headdim": (1, 1024),
    "chunk_size": (1, 1024),
    "vocab_size": (2, 65536),
    "tokens_per_frame": (1, 16384),
    "num_actions": (1, 256),
    "action_dim": (1, 4096),
    "action_context": (1, 64),
    "context": (1, 16),
    "token_dim": (1, 4096),
    "blocks": (0, 32),
    "blocks_per_stage": (0, 32),
    "mid_blocks": (0, 32),
    "expand_ratio": (1, 16),
    "pool": (1, 64),  # an IDM's pooling before its convs
}
LIST_BOUNDS: dict[str, tuple[int, int, int]] = {  # field: (least entry, most entry, most entries)
    "channels": (1, 2048, 8),
    "decoder_channels": (1, 2048, 8),
    "levels": (2, 256, 8),
}


def _refuse_constant(name: str):
    raise ConfigError(f"{name} is not a number JSON allows; sizes must be finite")


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A small JSON file parsed with NaN, Infinity and runaway nesting refused (ConfigError naming the file)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ConfigError(f"{path}: {size} bytes, over the {max_bytes}-byte limit for a config file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested deeper than any config needs (more than {MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    _check_depth(data, str(path), 0)
    return data


def _check_depth(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nested deeper than any config needs (more than {MAX_DEPTH} levels)")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _check_depth(child, where, depth + 1)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_sizes(data: dict, where: str = "config.json") -> None:
    """Every size field of a model config (a parsed config.json) within SIZE_BOUNDS / LIST_BOUNDS, every
    number finite, and heads dividing the width; a ConfigError naming `where` and the field otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    _check_depth(data, where, 0)
    _check_section(data, where, "")


def _check_section(data: dict, where: str, prefix: str) -> None:
    for key, value in data.items():
        field = f"{where}: {prefix}{key}"
        if isinstance(value, dict):
            _check_section(value, where, f"{prefix}{key}.")
        elif _number(value) and not math.isfinite(value):
            raise ConfigError(f"{field} is {value}; sizes must be finite numbers")
        elif key in SIZE_BOUNDS and _number(value):
            low, high = SIZE_BOUNDS[key]
            if not low <= value <= high:
                raise ConfigError(f"{field} is {value}; it must be from {low:g} to {high:g}")
        elif key in LIST_BOUNDS and isinstance(value, list):
            low, high, most = LIST_BOUNDS[key]
            if len(value) > most or not all(_number(v) and low <= v <= high for v in value):
                raise ConfigError(f"{field} is {value!r}; it must list at most {most} numbers from {low} to {high}")
    heads, width = data.get("n_heads"), data.get("d_model")
    if _number(heads) and _number(width) and width % heads:
        raise ConfigError(f"{where}: {prefix}d_model {width} is not divisible by n_heads {heads}")


def check_config_file(path: str | Path) -> dict:
    """A model folder's config.json, parsed and bounded before anything is built from it."""
    data = read_json(path)
    check_sizes(data, str(path))
    return data
