"""The evaluation report: results.json, report.md (every metric beside its seed target), the drift
curve and confusion-matrix plots, and a side-by-side GIF of real (left) and generated (right) play.

Everything is written to a temporary name and renamed, so an interrupted run never leaves a
half report; plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from core.actions import ACTIONS

# (label, path into metrics, target text, test): the targets a world model is judged against
TARGETS = (
    ("tokenizer PSNR (dB)", ("reconstruction", "tokenizer_psnr"), "> 30", lambda v: v > 30),
    ("tokenizer SSIM", ("reconstruction", "tokenizer_ssim"), "> 0.9", lambda v: v > 0.9),
    ("decoder PSNR (dB)", ("reconstruction", "decoder_psnr"), "> 30", lambda v: v > 30),
    ("decoder SSIM", ("reconstruction", "decoder_ssim"), "> 0.9", lambda v: v > 0.9),
    ("decoder LPIPS", ("reconstruction", "decoder_lpips"), "< 0.2", lambda v: v < 0.2),
    ("codebook used", ("reconstruction", "codebook_used_fraction"), "(reported)", None),
    ("small frame scaled up, PSNR (dB; frames family)", ("reconstruction", "small_frame_psnr"), "(reported)", None),
    ("teacher-forced PSNR (dB)", ("prediction", "teacher_forced_psnr"), "> 30", lambda v: v > 30),
    ("teacher-forced SSIM", ("prediction", "teacher_forced_ssim"), "> 0.9", lambda v: v > 0.9),
    ("repeat-last-frame PSNR (dB), the baseline", ("prediction", "copy_previous_psnr"), "(reported)", None),
    ("action loss gap, shuffled - true actions (nats)", ("prediction", "action_loss_gap"), "> 0", lambda v: v > 0),
    ("rollout PSNR at 1 s (dB)", ("drift", "1s", "psnr"), "(reported)", None),
    ("FVD", ("fvd", "fvd"), "< 150", lambda v: v < 150),
    ("action accuracy, generated", ("action_accuracy", "generated", "accuracy"), "> 95%", lambda v: v > 0.95),
    ("action accuracy, generated, first 1 s", ("action_accuracy", "generated_first", "1s"), "(reported)", None),
    ("action accuracy, generated, first 4 s", ("action_accuracy", "generated_first", "4s"), "(reported)", None),
    ("action accuracy, IDM on real", ("action_accuracy", "real_this_split", "accuracy"), "> 95%", lambda v: v > 0.95),
    ("delta-PSNR t=16 (dB)", ("controllability", "t=16", "delta_psnr"), "> 0", lambda v: v > 0),
    ("physics, generated", ("physics", "generated", "score"), "> 0.8", lambda v: v > 0.8),
    ("physics, real frames", ("physics", "real", "score"), ">= 0.99", lambda v: v >= 0.99),
    ("drift-free horizon (s)", ("drift_free_horizon", "seconds_median"), "> 30", lambda v: v > 30),
    ("moving things kept (real play: 1)", ("moving_things", "kept"), "> 0.9", lambda v: v > 0.9),
)


def lookup(metrics: dict, path: tuple[str, ...]):
    value = metrics
    for key in path:
        if not isinstance(value, dict):
            return value  # a "not computed (...)" string stands for the whole branch
        value = value.get(key)
    return value


def target_rows(metrics: dict, targets=TARGETS) -> list[dict]:
    """Each target (label, path into the metrics, target text, test) against its measured value."""
    rows = []
    for label, path, target, test in targets:
        value = lookup(metrics, path)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        status = ("pass" if test(value) else "fail") if number and test else "-"
        rows.append(
            {
                "metric": label,
                "value": value if number else (value or "not computed"),
                "target": target,
                "status": status,
            }
        )
    return rows


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in results.items() if k != "samples"}
    public["targets"] = target_rows(results["metrics"])
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(public, indent=2, default=float)))
    return path


def write_report(results: dict, directory: str | Path) -> dict[str, Path]:
    """results.json, report.md, drift_curve.png, confusion.png (when an IDM ran), real_vs_generated.gif."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(results, directory / "results.json")}

    curves = results["curves"]
    steps = np.arange(1, len(curves["psnr"]) + 1) / 30
    figure, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    fidelities = (("palette_fidelity", "palette fidelity"), ("patch_fidelity", "patch fidelity"))
    for axis, (key, label) in zip(axes, (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), *fidelities)):
        axis.plot(steps, curves[key])
        axis.set_xlabel("seconds of rollout (30 FPS)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    for axis, (key, _) in zip(axes[2:], fidelities):
        if f"{key}_floor" in curves:
            axis.plot(steps, curves[f"{key}_floor"], color="red", linestyle="--", label="real-frame band floor")
            axis.legend()
    figure.suptitle("free rollouts under the real actions vs the real frames")
    figure.tight_layout()
    paths["drift_curve"] = directory / "drift_curve.png"
    _atomic(paths["drift_curve"], lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)

    accuracy = results["metrics"]["action_accuracy"]
    if isinstance(accuracy, dict):
        figure, axes = plt.subplots(1, 2, figsize=(14, 6.5))
        for axis, key in zip(axes, ("real_this_split", "generated")):
            confusion = np.array(accuracy[key]["confusion"], dtype=np.float64)
            shown = np.flatnonzero(confusion.sum(0) + confusion.sum(1))
            rates = confusion[np.ix_(shown, shown)] / np.maximum(confusion[shown].sum(1, keepdims=True), 1)
            axis.imshow(rates, vmin=0, vmax=1, cmap="viridis")
            names = [ACTIONS[i] for i in shown]
            axis.set_xticks(range(len(shown)), names, rotation=90)
            axis.set_yticks(range(len(shown)), names)
            axis.set_xlabel("IDM prediction")
            axis.set_ylabel("visible action")
            axis.set_title(f"{key.replace('_', ' ')}: accuracy {accuracy[key]['accuracy']:.3f}")
        figure.tight_layout()
        paths["confusion"] = directory / "confusion.png"
        _atomic(paths["confusion"], lambda tmp: figure.savefig(tmp, dpi=90, format="png"))
        plt.close(figure)

    paths["gif"] = directory / "real_vs_generated.gif"
    write_side_by_side(results["samples"]["real"], results["samples"]["generated"], paths["gif"])
    paths["markdown"] = directory / "report.md"
    text = markdown(results, {k: v.name for k, v in paths.items()})
    _atomic(paths["markdown"], lambda tmp: Path(tmp).write_text(text))
    return paths


def write_side_by_side(
    real: np.ndarray, generated: np.ndarray, path: Path, max_frames: int = 150, every: int = 2
) -> None:
    """A GIF of the first max_frames frames, every `every`-th shown (in real time): real frame | 4 px gap |
    generated frame. A dream's noise defeats GIF's frame-to-frame compression (~50 kB a frame): every second
    frame keeps a shipped model's three previews under ~12 MB."""
    from PIL import Image

    count = min(len(real), len(generated), max_frames)
    gap = np.full((real.shape[1], 4, 3), 255, np.uint8)
    images = [Image.fromarray(np.concatenate([real[i], gap, generated[i]], 1)) for i in range(0, count, every)]
    duration = round(1000 * every / 30)
    _atomic(
        path,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
        ),
    )


def markdown(results: dict, files: dict[str, str]) -> str:
    info, metrics = results["info"], results["metrics"]
    lines = [
        f"# PocketWorld evaluation: {info['model']}",
        "",
        f"- data: {info['data']} (split **{info['split']}**: level seeds {info['seeds']})",
        f"- episodes: {info['episodes']}, frames: {info['frames']}, rollout: {metrics['drift']['rollout_frames']} "
        f"frames; sampling temperature {results['config']['temperature']}",
        f"- IDM: {info.get('idm') or 'none'}; LPIPS/FVD weights: {info.get('lpips') or 'none'} / "
        f"{info.get('i3d') or 'none'}",
        "",
        "| metric | value | target | status |",
        "|---|---|---|---|",
    ]
    for row in target_rows(metrics):
        value = f"{row['value']:.4g}" if isinstance(row["value"], (int, float)) else row["value"]
        lines.append(f"| {row['metric']} | {value} | {row['target']} | {row['status']} |")
    lines += ["", "## Drift", "", f"![drift curve]({files['drift_curve']})", ""]
    for horizon, value in metrics["drift"].items():
        lines.append(f"- {horizon}: {value}")
    lines += ["", "## Controllability (Genie delta-PSNR: real actions minus random actions)", ""]
    lines += [f"- {k}: {v}" for k, v in metrics["controllability"].items()]
    lines += ["", "## Drift-free horizon", "", f"- {json.dumps(metrics['drift_free_horizon'])}", ""]
    lines += ["## Moving things kept (a ball, a bullet: kept or lost)", ""]
    lines += [f"- {json.dumps(metrics['moving_things'])}", ""]
    lines += ["## Action accuracy (IDM)", ""]
    accuracy = metrics["action_accuracy"]
    if isinstance(accuracy, dict):
        lines += [
            f"- labels: {accuracy['labels']}",
            f"- IDM on held-out real play when trained: {accuracy['idm_heldout_at_training']}",
            f"- IDM on this split's real play: {accuracy['real_this_split']['accuracy']:.4f} "
            f"({accuracy['real_this_split']['count']} transitions; relabelled presses "
            f"{accuracy['real_this_split']['relabelled']})",
            f"- on generated transitions: {accuracy['generated']['accuracy']:.4f} (first seconds of each rollout: "
            f"{accuracy['generated_first']})",
            f"- per action (generated, recall): {accuracy['generated']['per_action']}",
            "- per episode (generated): "
            + "; ".join(f"{e['episode']}: {e['accuracy']:.4f}" for e in accuracy["generated_per_episode"]),
            "",
            f"![confusion]({files['confusion']})",
            "",
        ]
    else:
        lines += [f"- {accuracy}", ""]
    lines += [
        "## Physics (platformer rules on located sprites)",
        "",
        f"- {json.dumps(metrics['physics'])}",
        "",
        "## Reconstruction and prediction",
        "",
        f"- {json.dumps(metrics['reconstruction'])}",
        f"- {json.dumps(metrics['prediction'])}",
        "",
        "## FVD",
        "",
        f"- {json.dumps(metrics['fvd'])}",
        "",
        "## Real (left) vs generated (right)",
        "",
        f"![side by side]({files['gif']})",
        "",
    ]
    return "\n".join(lines)
