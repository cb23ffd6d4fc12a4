"""Curves of a lab run: each control metric against minutes of training, one line per game."""

from __future__ import annotations

from pathlib import Path

PANELS = (
    "idm_accuracy",
    "delta_psnr_t4",
    "delta_psnr_t16",
    "action_gap_relative",
    "changed_accuracy",
    "rollout_psnr_t16",
)


def plot_rows(rows: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    minutes = [row["minutes"] for row in rows]
    games = sorted({game for row in rows for game in row["games"]})
    for ax, name in zip(axes.flat, PANELS):
        for game in games:
            values = [row["games"].get(game, {}).get(name) for row in rows]
            if any(v is not None for v in values):
                ax.plot(minutes, [float("nan") if v is None else v for v in values], "o-", label=game, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("training CPU-minutes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out)
