"""Training metrics on disk (`metrics.jsonl`, one JSON object per line) and their plot.

Each line is {"step": int, "split": "train" | "val", name: value, ...}. TensorBoard gets the
same numbers through accelerate's tracker (core/train/loop.py); the JSONL file is what
`pocketworld plot` and tests read, since it needs nothing but the standard library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends metric lines; on resume, drops lines past the checkpoint so steps never repeat."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        self.path = run_dir / METRICS_FILE
        if resume_step is not None and self.path.is_file():
            from core.train.checkpoint import atomic_write_text

            kept = [line for line in read_metrics(self.path) if line["step"] <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(line) + "\n" for line in kept))
        elif resume_step is None:
            self.path.unlink(missing_ok=True)

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "split": split, **values}) + "\n")


def read_metrics(path: Path) -> list[dict]:
    lines, texts = [], Path(path).read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(texts, 1):
        if text.strip():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                if number < len(texts):  # only a half-written last line (a killed run) is forgiven
                    raise ValueError(f"{path}:{number} is not a JSON line") from None
    return lines


def plot_run(run_dir: str | Path, out: str | Path) -> list[str]:
    """Draw every metric of a run (train and val curves) into one PNG; returns the metric names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a training run folder?")
    lines = read_metrics(path)
    skip = {"step", "split", "lr", "frames_per_second"}
    names = sorted({k for line in lines for k in line if k not in skip})
    if not names:
        raise ValueError(f"{path} holds no metrics yet")
    names.append("lr")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for split, style in (("train", "-"), ("val", "o-")):
            points = [(line["step"], line[name]) for line in lines if line["split"] == split and name in line]
            if points:
                ax.plot(*zip(*points), style, label=split, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("step")
        if name.startswith("loss") or name.endswith("loss"):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return names
