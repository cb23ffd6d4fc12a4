"""The Benchmarks tab: each model's measured quality and speed, read from the files our tools write.

Where a model keeps its measurements (the convention, also in the README): an `eval/` folder
beside its weights (`zoo/<variant>/eval/`, or a fine-tune's folder `.../eval/`):

    eval/results.json, eval/*.png        pocketworld evaluate MODEL --data SHARDS --report <model folder>/eval
    eval/<name>/results.json, *.png      more reports (e.g. one per game): --report <model folder>/eval/<name>
    eval/bench_play.json                 pocketworld bench play --variant NAME
                                           --json <model folder>/eval/bench_play.json

Any other report (a folder holding results.json, or the file itself) opens by path. Every file
is read only if it lies, links followed, inside the folder the tab was pointed at. Every
problem comes back as text for the page: a missing or broken file never raises into the app.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from core import zoo
from core.play.models import REGISTRY_PREFIX, base_variant

EVAL_DIR = "eval"
REPORT_FILE = "results.json"
BENCH_PLAY_FILE = "bench_play.json"
# The keys `pocketworld bench play --json` writes (core.bench.PlayBenchResult), as the speed table's headers.
BENCH_PLAY_LABELS = {
    "variant": "model",
    "precision": "engine",
    "threads": "threads",
    "device": "device",
    "weights": "weights",
    "steps": "steps",
    "fps": "frames/s",
    "latency_ms_p50": "step p50 (ms)",
    "latency_ms_p95": "step p95 (ms)",
    "peak_rss_mb": "peak memory (MB)",
    "psnr_vs_fp32": "PSNR vs fp32 (dB)",
    "token_agreement": "tokens as fp32",
    "quality_steps": "quality steps",
    "prepare_s": "prepare (s)",
    "cpu": "CPU",
}


class ReportError(ValueError):
    """A path that does not hold a readable `pocketworld evaluate` report."""


@dataclass
class Report:
    folder: Path
    info: dict  # what was evaluated: model, data, split, game, episodes, frames
    targets: list[dict]  # rows of core.evaluation.report.target_rows: metric, value, target, status
    plots: list[Path]  # the PNGs the report wrote beside results.json


@dataclass
class ModelBenchmarks:
    value: str  # the model choice ("nano", "registry:owner/name")
    folder: Path | None  # where its weights (and eval/) live; None when not on this machine
    base: str | None  # the zoo variant it runs on (itself for a zoo variant)
    reports: list[Report] = field(default_factory=list)
    bench_play: dict | list | None = None
    problems: list[str] = field(default_factory=list)  # files found but unreadable, said on the page


def _inside(file: Path, root: Path) -> bool:
    """Whether `file`, its links followed, lies in `root`: a shared app reads only the folder it was pointed at."""
    resolved, root = file.resolve(), root.resolve()
    return resolved == root or root in resolved.parents


def read_report(path: str | Path, root: str | Path | None = None) -> Report:
    """A report from its results.json or the folder holding it; ReportError saying what is wrong.
    Every file read must lie, links followed, inside `root` (default: the report's folder); plots
    that link elsewhere are left out."""
    path = Path(str(path).strip()).expanduser()
    file = path / REPORT_FILE if path.is_dir() else path
    if not file.is_file():
        raise ReportError(
            f"no evaluation report at {path}: expected {REPORT_FILE} (or a folder holding it), "
            f"as `pocketworld evaluate MODEL --data SHARDS --report FOLDER` writes"
        )
    root = Path(root) if root is not None else file.parent
    if not _inside(file, root):
        raise ReportError(f"{file} is a link to a file outside {root}; reports are read only from inside it")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{file} is not a readable JSON report ({err})") from None
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise ReportError(f"{file} is JSON but not a `pocketworld evaluate` report (it has no 'metrics')")
    targets = results.get("targets")
    if not isinstance(targets, list):  # a --json file from before targets were written: recompute them
        from core.evaluation.report import target_rows

        targets = target_rows(results["metrics"])
    info = results.get("info") if isinstance(results.get("info"), dict) else {}
    plots = [png for png in sorted(file.parent.glob("*.png")) if _inside(png, root)]
    return Report(file.parent, info, targets, plots)


def model_folder(value: str, registry=None) -> tuple[Path | None, str | None]:
    """(the folder of a model choice's weights: zoo/<name> or a local registry fine-tune's; its zoo variant)."""
    if not value.startswith(REGISTRY_PREFIX):
        return zoo.zoo_dir() / value, value
    if registry is None:
        return None, None
    try:
        entry = registry.info(value[len(REGISTRY_PREFIX) :])
    except (ValueError, OSError):
        return None, None
    location = Path(entry.location)
    # a Hub fine-tune lives at a URL, not here
    return (location if location.is_dir() else None), base_variant(entry.base_model)


def find_benchmarks(value: str, registry=None) -> ModelBenchmarks:
    found = ModelBenchmarks(value, *model_folder(value, registry))
    if found.folder is None:
        return found
    eval_dir = found.folder / EVAL_DIR
    for file in [eval_dir / REPORT_FILE, *sorted(eval_dir.glob(f"*/{REPORT_FILE}"))]:
        if file.is_file():
            try:
                found.reports.append(read_report(file, root=eval_dir))  # a linked report folder counts too
            except ReportError as err:
                found.problems.append(str(err))
    bench_file = eval_dir / BENCH_PLAY_FILE
    if bench_file.is_file() and not _inside(bench_file, eval_dir):
        found.problems.append(f"{bench_file} is a link to a file outside {eval_dir}; it is not read")
    elif bench_file.is_file():
        try:
            found.bench_play = json.loads(bench_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            found.problems.append(f"{bench_file} is not readable JSON ({err})")
    return found


def how_to_measure(value: str, folder: Path | None, base: str | None) -> str:
    """Markdown: the exact commands that write this model's report and play benchmark where the tab looks."""
    if folder is None or base is None:
        return (
            f"`{value}` is not in a local folder, so its reports cannot be found here: run "
            "`pocketworld evaluate` on it and paste the report folder's path above."
        )
    # a fine-tune is evaluated on its base model with its adapter, and plays at its base model's speed
    model = base if base == value else f"{base} --adapter {shlex.quote(str(folder))}"
    eval_dir = folder / EVAL_DIR
    return (
        "```\n"
        "pocketworld collect --game platformer --agent scripted --split test --frames 2000 "
        "--out shards/platformer-test\n"
        f"pocketworld evaluate {model} --data shards/platformer-test --split test "
        f"--report {shlex.quote(str(eval_dir))}\n"
        f"pocketworld bench play --variant {base} --json {shlex.quote(str(eval_dir / BENCH_PLAY_FILE))}\n"
        "```\n"
        "Add `--idm FOLDER` (from `pocketworld idm train`) to `evaluate` for action accuracy."
    )


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/").replace("\n", " ")  # one table cell


def report_markdown(report: Report) -> str:
    info = report.info
    what = ", ".join(f"{key} {_value(info[key])}" for key in ("game", "split", "episodes", "frames") if key in info)
    lines = [
        f"#### {info.get('model', 'report')} ({what or 'no details recorded'})",
        f"`{report.folder}`",
        "",
        "| metric | value | target | status |",
        "|---|---|---|---|",
    ]
    for row in report.targets:
        status = {"pass": "pass", "fail": "**fail**"}.get(row.get("status"), "-")
        lines.append(
            f"| {_value(row.get('metric'))} | {_value(row.get('value'))} | {_value(row.get('target'))} | {status} |"
        )
    return "\n".join(lines)


def bench_play_markdown(bench) -> str:
    """`pocketworld bench play` JSON (one result or a list, e.g. per precision) as a table."""
    rows = bench if isinstance(bench, list) else [bench]
    rows = [row for row in rows if isinstance(row, dict)]
    if not rows:
        return "the play benchmark file holds no results"
    keys = list(dict.fromkeys(key for row in rows for key in row))
    headers = [BENCH_PLAY_LABELS.get(key, _value(key).replace("_", " ")) for key in keys]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_bench_cell(key, row.get(key)) for key in keys) + " |" for row in rows]
    return "\n".join(lines)


def _bench_cell(key: str, value) -> str:
    if value is None:  # bench play writes no PSNR when an engine's frames equal fp32's; else nothing was measured
        return "exact" if key == "psnr_vs_fp32" else "-"
    if key == "token_agreement" and isinstance(value, (int, float)):
        return f"{value:.1%}"
    return _value(value)


def benchmarks_markdown(found: ModelBenchmarks) -> str:
    title = found.value[len(REGISTRY_PREFIX) :] if found.value.startswith(REGISTRY_PREFIX) else found.value
    lines = [f"### {title}"]
    if found.base is not None and not zoo.weights_available(found.base):
        lines.append(
            f"No trained weights for `{found.base}` on this machine yet, so nothing can be measured: "
            f"train them (`pocketworld train ...`) into `{zoo.zoo_dir() / found.base}` first."
        )
    if found.folder is not None:
        lines.append(f"Measurements are read from `{found.folder / EVAL_DIR}`.")
    lines += [f"> Could not read: {problem}" for problem in found.problems]
    lines += ["", "**Quality** (`pocketworld evaluate`)", ""]
    lines += [report_markdown(report) + "\n" for report in found.reports] or [
        "No evaluation report yet. Make one with:"
    ]
    lines += ["", "**Speed** (`pocketworld bench play`)", ""]
    lines.append(
        bench_play_markdown(found.bench_play)
        if found.bench_play is not None
        else "No play benchmark yet (the last command below writes it)."
    )
    if not found.reports or found.bench_play is None:
        lines += ["", how_to_measure(found.value, found.folder, found.base)]
    return "\n".join(lines)


def show_benchmarks(value: str | None, report_path: str | None, registry=None) -> tuple[str, list[tuple]]:
    """The tab's one action: (Markdown, [(plot image, caption)]) for a report path if one is given, else a model."""
    if report_path and report_path.strip():
        try:
            report = read_report(_served_path(report_path))
        except ReportError as err:
            return f"**Cannot open that report:** {err}", []
        return report_markdown(report), _captioned(report)
    if not value:
        return "Pick a model, or paste the path of a report folder.", []
    found = find_benchmarks(value, registry)
    return benchmarks_markdown(found), [plot for report in found.reports for plot in _captioned(report)]


def _served_path(text: str) -> Path:
    """A pasted path, allowed only inside the folder the app runs in or the zoo: a visitor of a
    shared app must not be able to open PNGs and reports anywhere on the server."""
    path = Path(text.strip()).expanduser()
    resolved = (Path.cwd() / path).resolve()
    roots = [Path.cwd().resolve(), zoo.zoo_dir().resolve()]
    if not any(resolved == root or root in resolved.parents for root in roots):
        raise ReportError(
            f"{text.strip()} is outside the app's folder ({roots[0]}) and the zoo; reports open only from inside them"
        )
    return resolved


def _captioned(report: Report) -> list[tuple]:
    """(image, caption) per plot. Images, not paths: Gradio serves paths only from its allowed folders,
    and a model folder or pasted report can be anywhere."""
    from PIL import Image

    game = report.info.get("game")
    plots = []
    for png in report.plots:
        try:
            with Image.open(png) as image:
                plots.append((image.convert("RGB"), png.stem.replace("_", " ") + (f" ({game})" if game else "")))
        except OSError:  # PIL's UnidentifiedImageError is one
            continue  # a broken plot must not hide the report's numbers
    return plots
