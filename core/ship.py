"""Ship a trained model into the zoo: `zoo/<variant>/` laid out like a Hub repo.

What lands there is what `WorldModel.from_pretrained` and the Hub read (config.json, fp16/bf16
model.safetensors, README.md) plus what a visitor wants to look at: the evaluation report with
its preview GIF and plots in `eval/` (where the app's Benchmarks tab reads them, with the
`bench play` JSON as eval/bench_play.json), and each training stage's curves. The card's numbers are read from
`pocketworld evaluate --report` folders (one, or one per game: each then lands in `eval/<game>/` and
the bars get a column per game) and from the run folders themselves (steps, frames seen, optimiser
time), never typed in, and it names the commands that measured them. The folder is
built aside and swapped in whole, so a failed ship leaves the previous weights playable.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.atomic import staged_folder
from core.config import HUB_ORGANISATION, ConfigError, zoo_config
from core.evaluation.report import target_rows
from core.train.metrics import METRICS_FILE, plot_run, read_metrics
from core.world_model import WorldModel
from core.zoo import zoo_dir

# The bars a shipped model is held to, read from `pocketworld evaluate` results.
SHIP_BARS = (
    ("tokenizer PSNR (dB)", ("reconstruction", "tokenizer_psnr"), ">= 30", lambda v: v >= 30),
    ("tokenizer SSIM", ("reconstruction", "tokenizer_ssim"), ">= 0.9", lambda v: v >= 0.9),
    ("teacher-forced next-frame PSNR (dB)", ("prediction", "teacher_forced_psnr"), ">= 30", lambda v: v >= 30),
    ("repeat-last-frame PSNR (dB), the baseline", ("prediction", "copy_previous_psnr"), "(reference)", None),
    (
        "teacher-forced PSNR over repeating the last frame (dB)",
        ("prediction", "teacher_forced_gain"),
        ">= 1.0",
        lambda v: v >= 1.0,
    ),
    (
        "action loss gap, shuffled - true actions (nats; 0 = keys ignored)",
        ("prediction", "action_loss_gap"),
        "(reference)",
        None,
    ),
    ("action accuracy (visible effect)", ("action_accuracy", "generated", "accuracy"), ">= 90%", lambda v: v >= 0.9),
    (
        "action accuracy, the IDM on real frames (its ceiling)",
        ("action_accuracy", "real_this_split", "accuracy"),
        "(reference)",
        None,
    ),
    (
        "delta-PSNR t=16, real vs random keys (dB; 0 = keys ignored)",
        ("controllability", "t=16", "delta_psnr"),
        ">= 1.0",
        lambda v: v >= 1.0,
    ),
    ("physics consistency (platformer rollouts)", ("physics", "generated", "score"), ">= 0.8", lambda v: v >= 0.8),
    ("drift-free horizon (s)", ("drift_free_horizon", "seconds_median"), ">= 30", lambda v: v >= 30),
    (
        "moving things kept (a ball, a bullet: real play 1)",
        ("moving_things", "kept"),
        "(reference)",
        None,
    ),
)
REPORT_SUFFIXES = (".json", ".md", ".png", ".gif")  # what of a report folder is shipped
TRAINING_FILE = "training.json"  # a zoo folder's budget rows, each naming its curves image in the folder
BUDGET_KEYS = ("stage", "run", "steps", "frames_seen", "train_seconds", "curves")


@dataclass
class ShipConfig:
    model: str  # a trained model folder (a run's model/ export)
    variant: str = "nano"  # the zoo variant it is; its architecture must match
    # `pocketworld evaluate --report` folders of this model: one, or one per game (a list)
    report: str | list[str] | None = None
    evaluate_command: str | list[str] | None = None  # the command(s) that made the report(s), quoted in the card
    runs: list[str] = field(default_factory=list)  # training run folders, for the budget and curves
    # an earlier zoo folder whose training this model is or continues: its budget rows and curves (TRAINING_FILE)
    # come first. Run folders are git-ignored and a fresh machine has none; a shipped folder keeps its history
    history: str | None = None
    bench: str | None = None  # a `pocketworld bench play --json` file of this model
    out: str | None = None  # default: the zoo folder of the variant
    dtype: str = "fp16"  # weight storage: fp16 or bf16 (fp32 only on request)
    notes: str | None = None  # a markdown file appended to the card: limitations, how the test data was made


def bar_rows(results: dict) -> list[dict]:
    """The shipping bars against the measured values: metric, target, value, status. The teacher-forced gain over
    repeating the last frame is derived here, so that reports written before it was a bar are judged by it too."""
    prediction = results.get("prediction")
    if isinstance(prediction, dict):
        tf, copy = prediction.get("teacher_forced_psnr"), prediction.get("copy_previous_psnr")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (tf, copy)):
            results = {**results, "prediction": {**prediction, "teacher_forced_gain": round(tf - copy, 2)}}
    return target_rows(results, SHIP_BARS)


def run_budget(run_dir: str | Path) -> dict:
    """Steps, frames seen and training seconds of one run folder, from its config and metrics.

    Seconds are summed from the logged frames/s of each logging window (validation and
    checkpoint time excluded), so they are the optimiser's time, across every resumed chunk."""
    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    lines = [line for line in read_metrics(run_dir / METRICS_FILE) if line.get("split") == "train"]
    if not lines:
        raise ValueError(f"{run_dir} has no training metrics yet")
    train = config["train"]
    clip = 1 if config["stage"] == "tokenizer" else config["data"]["clip_len"]
    per_step = train["batch_size"] * train.get("accumulation", 1) * clip
    every = config["log"]["every"]
    seconds = sum(every * per_step / line["frames_per_second"] for line in lines if line.get("frames_per_second"))
    step = lines[-1]["step"]
    return {
        "stage": config["stage"],
        "run": str(run_dir),
        "steps": step,
        "frames_seen": step * per_step,
        "train_seconds": round(seconds),
    }


def read_history(folder: str | Path) -> list[dict]:
    """The budget rows (with their curves images) of an earlier zoo folder's TRAINING_FILE."""
    folder = Path(folder)
    path = folder / TRAINING_FILE
    if not path.is_file():
        raise ConfigError(
            f"{folder} has no {TRAINING_FILE}: --history takes a zoo folder that `pocketworld ship` wrote with one"
        )
    try:
        rows = json.loads(path.read_text())["runs"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path} is not a training file (a JSON object with a 'runs' list): {error}") from None
    for row in rows:
        if not isinstance(row, dict) or set(row) != set(BUDGET_KEYS):
            raise ConfigError(f"{path}: each run row has exactly {', '.join(BUDGET_KEYS)}; got {row!r}")
        if not (folder / row["curves"]).is_file():
            raise ConfigError(f"{path} names {row['curves']}, which is not in {folder}")
    return rows


def ship(config: ShipConfig) -> Path:
    """Build the zoo folder of a trained model (weights, card, previews, curves); returns it."""
    from finetune.cards import zoo_card

    if config.dtype not in ("fp16", "bf16", "fp32"):
        raise ConfigError(f"unknown storage dtype {config.dtype!r}; choose fp16, bf16 or fp32")
    model = WorldModel.from_pretrained(config.model)
    expected = zoo_config(config.variant).to_dict()
    found = model.config.to_dict()
    differs = sorted(k for k in expected if k != "name" and expected[k] != found.get(k))
    if differs:
        raise ConfigError(
            f"{config.model} is not a {config.variant} model: its {', '.join(differs)} differ from "
            f"the zoo's {config.variant} config"
        )
    model.config.name = config.variant

    reports = [config.report] if isinstance(config.report, str) else list(config.report or [])
    results = [_read_results(report) for report in reports]  # [(game, metrics)]
    games = [game for game, _ in results]
    if len(set(games)) < len(games):
        raise ValueError(f"two reports of the same game ({', '.join(games)}): give one report per game")
    history = read_history(config.history) if config.history else []
    budget = [run_budget(run) for run in config.runs]
    bench = json.loads(Path(config.bench).read_text()) if config.bench else None
    notes = _read_notes(config.notes) if config.notes else ""
    bars = {game: bar_rows(metrics) for game, metrics in results}
    metrics = {}
    for game, rows in bars.items():  # one report: the metric's name; several: "name (game)"
        label = (lambda name: name) if len(bars) == 1 else (lambda name, game=game: f"{name} ({game})")
        metrics.update({label(r["metric"]): r["value"] for r in rows if isinstance(r["value"], (int, float))})
    out = Path(config.out) if config.out else zoo_dir() / config.variant
    with staged_folder(out, replace=True) as folder:
        model.save_pretrained(folder, dtype=config.dtype)
        previews = []
        for report, game in zip(reports, games):
            previews += _copy_report(report, folder / "eval" if len(reports) == 1 else folder / "eval" / game, folder)
        if config.bench:
            (folder / "eval").mkdir(exist_ok=True)
            shutil.copyfile(config.bench, folder / "eval" / "bench_play.json")
        for row in history:
            shutil.copyfile(Path(config.history) / row["curves"], folder / row["curves"])
        curves = [row["curves"] for row in history]
        for row in budget:
            # one file per run: a stage trained in several runs (nano's tokenizer: three) shows each
            name = f"curves-{row['stage']}-{Path(row['run']).resolve().name}.png"
            if name in curves:
                name = name.replace(".png", f"-{len(curves)}.png")
            plot_run(row["run"], folder / name)
            curves.append(name)
            row["curves"] = name
        budget = history + budget
        if budget:
            (folder / TRAINING_FILE).write_text(json.dumps({"runs": budget}, indent=2) + "\n")
        card = zoo_card(
            config.variant,
            repo_id=f"{HUB_ORGANISATION}/{config.variant}",
            parameters=model.parameter_counts(),
            metrics=metrics or None,
            measured_on=f"held-out level seeds (split test) of {', '.join(games)}" if results else None,
            family=model.config.family,
        )
        commands = [config.evaluate_command] if isinstance(config.evaluate_command, str) else config.evaluate_command
        card = card.rstrip("\n") + "\n" + _training_section(budget, curves, previews, bars, commands or [], bench)
        if notes:
            card += "\n" + notes.strip() + "\n"
        (folder / "README.md").write_text(card)
    return out


def _read_results(report: str) -> tuple[str, dict]:
    """-> (the game it was measured on, its metrics)."""
    path = Path(report) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: give the folder written by `pocketworld evaluate --report`")
    results = json.loads(path.read_text())
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise ValueError(f"{path} is not a `pocketworld evaluate` report (it has no 'metrics')")
    game = (results.get("info") or {}).get("game") or Path(report).name
    return str(game), results["metrics"]


def _read_notes(notes: str) -> str:
    path = Path(notes)
    if not path.is_file():
        raise FileNotFoundError(f"--notes {path}: no such file; give a markdown file to append to the card")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--notes {path} is not UTF-8 text; give a markdown file") from None


def _copy_report(report: str, folder: Path, root: Path) -> list[str]:
    """The report's files into folder; returns the images among them, as card paths (relative to root)."""
    folder.mkdir(parents=True)
    images = []
    for path in sorted(Path(report).iterdir()):
        if path.is_file() and path.suffix in REPORT_SUFFIXES:
            shutil.copyfile(path, folder / path.name)
            if path.suffix in (".png", ".gif"):
                images.append((folder / path.name).relative_to(root).as_posix())
    return images


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(row: dict) -> str:
    return _shown(row["value"]) + (f" {row['status']}" if row["status"] != "-" else "")


def _training_section(budget, curves, previews, bars, evaluate_commands, bench) -> str:
    parts = []
    if bars:
        games = list(bars)
        first = bars[games[0]]
        if len(games) == 1:
            parts += ["\n## Shipping bars\n", "| metric | bar | measured | |", "|---|---|---|---|"]
            parts += [f"| {r['metric']} | {r['target']} | {_shown(r['value'])} | {r['status']} |" for r in first]
        else:
            parts += [
                "\n## Shipping bars\n",
                f"| metric | bar | {' | '.join(games)} |",
                "|---" * (len(games) + 2) + "|",
            ]
            for i, row in enumerate(first):
                cells = [_cell(bars[game][i]) for game in games]
                parts.append(f"| {row['metric']} | {row['target']} | {' | '.join(cells)} |")
        if evaluate_commands:
            parts += ["", "Measured with:", "", "```"] + list(evaluate_commands) + ["```"]
    if bench:
        rows = bench if isinstance(bench, list) else [bench]
        parts += ["\n## Play speed\n", "| threads | precision | FPS | p50 ms | p95 ms |", "|---|---|---|---|---|"]
        parts += [
            f"| {r.get('threads')} | {r.get('precision', 'fp32')} | {r.get('fps')} | {r.get('latency_ms_p50')} | "
            f"{r.get('latency_ms_p95')} |"
            for r in rows
        ]
    if budget:
        total = sum(r["train_seconds"] for r in budget)
        parts += ["\n## Training budget\n", "| stage | steps | frames seen | optimiser minutes |", "|---|---|---|---|"]
        parts += [
            f"| {r['stage']} | {r['steps']:,} | {r['frames_seen']:,} | {r['train_seconds'] / 60:.0f} |" for r in budget
        ]
        parts += [
            "",
            f"{total / 3600:.1f} optimiser hours in all, summed from the runs' logged throughput "
            "(validation and checkpoints excluded).",
        ]
    if curves or previews:
        parts += ["\n## Curves and previews\n"] + [f"![{name}]({name})" for name in previews + curves]
    return "\n".join(parts) + "\n"
