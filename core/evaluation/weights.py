"""Finding the standard pretrained weights of the perceptual metrics (LPIPS, FVD's I3D) offline.

Our machines cannot download them, and a number computed with other weights must not be
reported under the metric's name. So each metric looks in a fixed list of places -- an
explicit path, $POCKETWORLD_METRIC_WEIGHTS/<file>, then the Hugging Face cache of
METRICS_REPO -- and, when the file is in none, the report says "not computed (weights not
found at ...)" listing them. Files are safetensors only (never unpickled); how to convert
the upstream checkpoints is in each metric's module docstring.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "POCKETWORLD_METRIC_WEIGHTS"
METRICS_REPO = "pocketworld/metric-weights"  # the Hub repo whose cached files we look for (never fetched)


def find_weights(filename: str, explicit: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """(path of the first place holding `filename`, or None; every place looked at, for the message)."""
    places: list[str] = []
    if explicit:
        explicit = Path(explicit)
        candidate = explicit / filename if explicit.is_dir() else explicit
        places.append(str(candidate))
        if candidate.is_file():
            return candidate, places
    if os.environ.get(ENV_VAR):
        candidate = Path(os.environ[ENV_VAR]) / filename
        places.append(str(candidate))
        if candidate.is_file():
            return candidate, places
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    cached = try_to_load_from_cache(METRICS_REPO, filename)
    places.append(f"the Hugging Face cache ({HF_HUB_CACHE}) for {METRICS_REPO}/{filename}")
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached), places
    return None, places


def not_found(places: list[str]) -> str:
    return f"not computed (weights not found at {'; '.join(places)})"
