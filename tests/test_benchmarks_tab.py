"""The Benchmarks tab without a browser: reports found by the eval/ convention or by path, and bad files."""

import json

import numpy as np
import pytest
from PIL import Image

from core.evaluation.report import write_json
from core.play.benchmarks import BENCH_PLAY_FILE, EVAL_DIR, ReportError, find_benchmarks, read_report, show_benchmarks
from finetune.registry import ModelEntry, RegistryError


def write_report(folder, psnr, game="platformer", plot=True):
    """A report as `pocketworld evaluate --report` leaves it: results.json (with targets) and PNG plots."""
    results = {
        "metrics": {"reconstruction": {"tokenizer_psnr": psnr, "tokenizer_ssim": 0.95}},
        "info": {"model": "nano", "game": game, "split": "test", "episodes": 4, "frames": 1092},
    }
    write_json(results, folder / "results.json")
    if plot:
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "drift_curve.png")
    return folder


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    (tmp_path / "nano").mkdir()
    return tmp_path


def test_a_model_shows_every_report_in_its_eval_folder_with_plots_and_the_play_benchmark(zoo):
    eval_dir = zoo / "nano" / EVAL_DIR
    write_report(eval_dir, 31.5)
    (eval_dir / "maze").mkdir()
    write_report(eval_dir / "maze", 24.0, game="maze")
    (eval_dir / BENCH_PLAY_FILE).write_text(json.dumps({"variant": "nano", "fps": 10.16, "latency_ms_p95": 106.6}))

    text, plots = show_benchmarks("nano", "")
    assert "| tokenizer PSNR (dB) | 31.5 | > 30 | pass |" in text
    assert "| tokenizer PSNR (dB) | 24 | > 30 | **fail** |" in text and "game maze" in text
    assert "| model | frames/s | step p95 (ms) |" in text and "| nano | 10.16 | 106.6 |" in text
    assert "pocketworld collect" not in text  # everything measured: no instructions
    assert [caption for _, caption in plots] == ["drift curve (platformer)", "drift curve (maze)"]
    assert plots[0][0].size == (30, 20)


def test_the_speed_table_has_readable_headers_and_a_dash_for_what_was_not_measured(zoo):
    rows = [
        {"variant": "nano", "precision": "fp32", "fps": 13.55, "psnr_vs_fp32": None, "token_agreement": 1.0},
        {
            "variant": "nano",
            "precision": "int8",
            "fps": None,
            "psnr_vs_fp32": 31.2,
            "token_agreement": 0.875,
            "new_field": 2,
        },
    ]
    (zoo / "nano" / EVAL_DIR).mkdir()
    (zoo / "nano" / EVAL_DIR / BENCH_PLAY_FILE).write_text(json.dumps(rows))
    text, _ = show_benchmarks("nano", "")
    assert "| model | engine | frames/s | PSNR vs fp32 (dB) | tokens as fp32 | new field |" in text
    assert "| nano | fp32 | 13.55 | exact | 100.0% | - |" in text
    assert "| nano | int8 | - | 31.2 | 87.5% | 2 |" in text
    assert "None" not in text and "psnr_vs_fp32" not in text


def test_a_model_without_reports_gives_the_exact_commands_that_make_them(zoo):
    text, plots = show_benchmarks("nano", None)
    assert plots == [] and "No evaluation report yet" in text and "No play benchmark yet" in text
    assert f"pocketworld evaluate nano --data shards/platformer-test --split test --report {zoo}/nano/eval" in text
    assert f"pocketworld bench play --variant nano --json {zoo}/nano/eval/{BENCH_PLAY_FILE}" in text


def test_a_report_opens_by_folder_or_file_and_an_old_json_gets_its_targets_recomputed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # pasted paths open only inside the app's folder (or the zoo)
    write_report(tmp_path, 12.0, plot=False)
    by_folder, by_file = read_report(tmp_path), read_report(tmp_path / "results.json")
    assert by_folder.targets == by_file.targets and by_folder.targets[0]["status"] == "fail"
    (tmp_path / "old.json").write_text(json.dumps({"metrics": {"reconstruction": {"tokenizer_psnr": 33.0}}}))
    assert read_report(tmp_path / "old.json").targets[0] == {
        "metric": "tokenizer PSNR (dB)",
        "value": 33.0,
        "target": "> 30",
        "status": "pass",
    }
    text, _ = show_benchmarks("nano", f"  {tmp_path}  ")  # a pasted path wins over the picked model
    assert "tokenizer PSNR (dB) | 12" in text


def test_bad_report_paths_and_files_give_messages_not_exceptions(tmp_path, zoo):
    text, plots = show_benchmarks("nano", str(tmp_path / "nowhere"))
    assert text.startswith("**Cannot open that report:**") and "results.json" in text and plots == []
    text, plots = show_benchmarks("nano", "/etc")  # a shared app's visitor cannot browse the server
    assert "outside the app's folder" in text and plots == []
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ReportError, match="not a readable JSON report"):
        read_report(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a `pocketworld evaluate` report"):
        read_report(tmp_path / "other.json")

    eval_dir = zoo / "nano" / EVAL_DIR
    eval_dir.mkdir()
    (eval_dir / "results.json").write_text("{not json")
    (eval_dir / BENCH_PLAY_FILE).write_text("")
    found = find_benchmarks("nano")
    assert found.reports == [] and len(found.problems) == 2
    text, _ = show_benchmarks("nano", "")
    assert "> Could not read:" in text and "pocketworld evaluate nano" in text
    assert show_benchmarks(None, "")[0].startswith("Pick a model")


class OneEntryRegistry:
    """finetune.registry's registry interface, as much of it as the tab reads."""

    def __init__(self, folder):
        self.entry = ModelEntry("ana/mario-like", str(folder), "pocketworld/nano", "platformer")

    def info(self, repo):
        if repo != self.entry.repo:
            raise RegistryError(f"{repo} is not in the local registry")
        return self.entry


def test_a_fine_tune_reads_its_adapter_folder_and_is_measured_on_its_base(zoo, tmp_path):
    adapter = tmp_path / "registry" / "ana" / "mario-like"
    adapter.mkdir(parents=True)
    registry = OneEntryRegistry(adapter)
    text, _ = show_benchmarks("registry:ana/mario-like", "", registry)
    assert text.startswith("### ana/mario-like") and "No trained weights for `nano`" in text
    assert f"pocketworld evaluate nano --adapter {adapter} --data shards/platformer-test" in text
    assert f"pocketworld bench play --variant nano --json {adapter}/eval/{BENCH_PLAY_FILE}" in text
    (adapter / EVAL_DIR).mkdir()
    write_report(adapter / EVAL_DIR, 31.0)
    assert "| tokenizer PSNR (dB) | 31 | > 30 | pass |" in show_benchmarks("registry:ana/mario-like", "", registry)[0]
    assert "not in a local folder" in show_benchmarks("registry:bob/gone", "", registry)[0]
