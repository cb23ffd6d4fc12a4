"""Preview recorded play: a GIF or MP4 of one shard sample with each frame's action drawn on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.actions import ACTIONS, to_buttons
from core.data.shards import list_shards, read_shard
from core.data.video import write_video

# arrow offsets for the on-screen joystick, in a 3x3 grid of 6-pixel cells
_ARROWS = {"UP": (0, -1), "DOWN": (0, 1), "LEFT": (-1, 0), "RIGHT": (1, 0)}


def annotate(frame: np.ndarray, action: int, caption: str) -> np.ndarray:
    """The frame with a small joystick (pressed directions lit, FIRE as a red dot) and the action's name."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 236, 255, 255), fill=(0, 0, 0))
    buttons = to_buttons(action)
    cx, cy = 10, 246
    for name, (dx, dy) in _ARROWS.items():
        x, y = cx + 6 * dx, cy + 6 * dy
        draw.rectangle((x - 2, y - 2, x + 2, y + 2), fill=(255, 255, 255) if name in buttons else (70, 70, 70))
    draw.ellipse((24, 242, 32, 250), fill=(255, 40, 40) if "FIRE" in buttons else (70, 70, 70))
    draw.text((40, 240), f"{ACTIONS[action]:<13} {caption}", fill=(255, 255, 255))
    return np.asarray(image)


def write_preview(source: str | Path, out: str | Path, sample: int = 0, max_frames: int = 300, fps: int = 30) -> dict:
    """Write sample number `sample` (across the shards at `source`) to `out` (.gif, .mp4 or .webm)."""
    out = Path(out)
    if out.suffix.lower() not in (".gif", ".mp4", ".webm"):
        raise ValueError(f"preview writes .gif, .mp4 or .webm, got {out.name!r}")
    if sample < 0 or max_frames <= 0 or fps <= 0:
        raise ValueError(f"sample must be >= 0 and max_frames, fps positive; got {sample}, {max_frames}, {fps}")
    found = None
    seen = 0
    for shard in list_shards(source):
        for item in read_shard(shard):
            if seen == sample:
                found = item
                break
            seen += 1
        if found:
            break
    if found is None:
        raise ValueError(f"{source} holds {seen} samples; there is no sample {sample}")
    meta = found.meta
    frames = [
        annotate(frame, int(action), f"{meta['game']} seed {meta['seed']} f{meta['start_frame'] + t}")
        for t, (frame, action) in enumerate(zip(found.frames[:max_frames], found.actions[:max_frames]))
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    else:
        write_video(out, frames, fps)
    return {"out": str(out), "frames": len(frames), "game": meta["game"], "seed": meta["seed"]}
