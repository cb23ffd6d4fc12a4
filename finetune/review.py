"""The keys an inverse-dynamics model proposed for a recording with no key log, laid out for a person
to check before a fine-tune learns from them.

`ingest --label-with IDM` (and the app's Fine-tune tab) writes two files beside the shards:
- `proposed_keys.json`: the proposed key of every ingested frame, as an action log at the model's
  30 FPS (`{"fps": 30, "actions": [...]}`, finetune/action_log.py). Corrected by hand, it is the
  `--actions` log of the same recording (a recording at another frame rate: pass `--fps 30`
  with frames exported at 30 FPS);
- `proposed_keys.png`: when each key was proposed along the recording, and a few transitions
  (the frame, the next frame, what changed between them, and the key read), spread over the recording and
  over the keys, so that a wrong reading ("RIGHT" where the player stood still) is seen at a glance.

The transitions shown are chosen while the shards are written (a reservoir per key), so the
recording is never decoded twice nor held in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core import actions as vocab
from finetune.action_log import format_action_log

PROPOSED_KEYS, REVIEW_PICTURE = "proposed_keys.json", "proposed_keys.png"
SHOWN = 8  # transitions in the picture


class KeyReview:
    """Collects a pseudo-labelled recording's keys and a few of its transitions as its samples are written."""

    def __init__(self, fps: int, seed: int = 0):
        self.fps = fps
        self.actions: list[np.ndarray] = []
        self._frames = 0  # frames added so far: the index of the next sample's first frame
        self._rng = np.random.default_rng(seed)
        self._seen: dict[int, int] = {}  # transitions of each key so far
        self._kept: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}  # key -> (frame index, it, the next)

    def add(self, frames: np.ndarray, actions: np.ndarray) -> None:
        """One sample's frames (T, H, W, 3) and proposed keys (T,), in recording order."""
        first, self._frames = self._frames, self._frames + len(actions)
        self.actions.append(np.asarray(actions))
        for t in range(len(frames) - 1):  # a sample's last frame has no next frame inside it
            key = int(actions[t])
            self._seen[key] = self._seen.get(key, 0) + 1
            kept = self._kept.setdefault(key, [])
            if len(kept) < SHOWN:  # reservoir sampling: every transition of a key equally likely to be shown
                kept.append((first + t, frames[t].copy(), frames[t + 1].copy()))  # a view would pin the sample
            else:
                slot = int(self._rng.integers(self._seen[key]))
                if slot < SHOWN:
                    kept[slot] = (first + t, frames[t].copy(), frames[t + 1].copy())

    def shown(self) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """Up to SHOWN (frame index, key, frame, next frame), keys taken in turn (pressed keys first), by time."""
        queues = {key: sorted(kept, key=lambda item: item[0]) for key, kept in self._kept.items()}
        order = sorted(queues, key=lambda key: (key == vocab.NOOP, -self._seen[key]))
        picked = []
        while len(picked) < SHOWN and any(queues.values()):
            for key in order:
                if queues[key] and len(picked) < SHOWN:
                    # spread each key's picks over the recording: alternate its earliest and latest left
                    item = queues[key].pop(0 if len(picked) % 2 == 0 else -1)
                    picked.append((item[0], key, item[1], item[2]))
        return sorted(picked, key=lambda item: item[0])

    def write(self, folder: Path, idm_name: str) -> None:
        """proposed_keys.json and proposed_keys.png into `folder`."""
        actions = np.concatenate(self.actions) if self.actions else np.zeros(0, np.int64)
        (folder / PROPOSED_KEYS).write_text(format_action_log(actions, PROPOSED_KEYS, fps=self.fps))
        draw_review(actions, self.shown(), self.fps, idm_name, folder / REVIEW_PICTURE)


def percent(share: float) -> str:
    """A share as a whole percentage, a rare key as "<1%" rather than a misleading "0%"."""
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def draw_review(actions: np.ndarray, shown: list, fps: int, idm_name: str, out: Path) -> None:
    """The picture: a timeline of the proposed keys over the recording, then the transitions `shown`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(set(actions.tolist()), key=lambda key: (key != vocab.NOOP, key))
    columns = 3
    rows = 1 + -(-len(shown) // columns)
    fig = plt.figure(figsize=(14, 2.2 + 1.7 * (rows - 1)))
    grid = fig.add_gridspec(rows, columns, height_ratios=[1.3] + [1.7] * (rows - 1))
    timeline = fig.add_subplot(grid[0, :])
    seconds = np.arange(len(actions)) / fps
    for row, key in enumerate(keys):
        at = actions == key
        share = at.mean() if len(actions) else 0.0
        timeline.scatter(seconds[at], np.full(int(at.sum()), row), marker="|", s=60, linewidths=0.6)
        timeline.text(seconds[-1] if len(seconds) else 0, row, f"  {percent(share)}", va="center", fontsize=8)
    timeline.set_yticks(range(len(keys)), [vocab.ACTIONS[key] for key in keys], fontsize=8)
    timeline.set_xlabel("seconds into the recording", fontsize=8)
    title = f"Keys proposed by the IDM {idm_name}, frame by frame (check them before fine-tuning)"
    timeline.set_title(title, fontsize=10)
    for index, (frame, key, before, after) in enumerate(shown):
        ax = fig.add_subplot(grid[1 + index // columns, index % columns])
        gap = np.full((before.shape[0], 4, 3), 255, np.uint8)
        # what changed, bright on the dimmed next frame: a few pixels of a moving sprite are easy to miss
        changed = np.abs(after.astype(int) - before.astype(int)).max(-1) > 24
        moved = (after // 3).astype(np.uint8)
        moved[changed] = (255, 0, 255)
        ax.imshow(np.concatenate([before, gap, after, gap, moved], 1))
        ax.set_title(f"{frame / fps:.1f} s: {vocab.ACTIONS[key]}  (frame, next, what changed)", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
