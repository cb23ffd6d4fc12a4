"""Training across processes: a run killed with SIGKILL and resumed ends with the weights of
an uninterrupted run, and a 2-process Accelerate run (gloo, CPU) keeps identical weights on
both ranks and matches a 1-process run with the same global batch up to float rounding."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.train.checkpoint import latest_checkpoint
from core.train.metrics import read_metrics
from tests.test_train import run
from tests.train_fixtures import run_overrides, save_tiny_model, write_token_shards

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def weights(run_dir: Path) -> dict:
    return load_file(run_dir / "model" / "model.safetensors")


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "core", "train", "dynamics", *args]


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def data(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    return tmp_path, tmp_path / "model", write_token_shards(tmp_path / "tokens", model)


def test_sigkill_then_resume_reaches_the_weights_of_an_uninterrupted_run(data):
    tmp, model_dir, tokens = data
    settings = {"train.threads": 1, "log.save_every": 2, "data.stride": 3}
    threads = torch.get_num_threads()
    try:
        run("dynamics", run_overrides(tmp, model_dir, tokens, "whole", steps=10, **settings))
    finally:
        torch.set_num_threads(threads)

    process = subprocess.Popen(
        cli(*run_overrides(tmp, model_dir, tokens, "killed", steps=10, **settings)),
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while latest_checkpoint(tmp / "killed") is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for a file another process writes: there is no event to wait on
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    killed_at = int(latest_checkpoint(tmp / "killed").name.split("-")[1])
    assert killed_at < 10 and not (tmp / "killed" / "model").exists()

    resumed = subprocess.run(
        cli(*run_overrides(tmp, model_dir, tokens, "killed", steps=10, **settings), "--resume"),
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["step"] == 10
    whole, killed = weights(tmp / "whole"), weights(tmp / "killed")
    assert all(torch.allclose(whole[k], killed[k], rtol=0, atol=1e-6) for k in whole)
    steps = [line["step"] for line in read_metrics(tmp / "killed" / "metrics.jsonl") if line["split"] == "train"]
    assert steps == list(range(1, 11))  # no step logged twice, none missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_agree_with_each_other_and_with_one_process(data):
    tmp, model_dir, tokens = data
    two = run_overrides(tmp, model_dir, tokens, "two", steps=3, **{"train.cpu": "true", "train.batch_size": 2})
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "core",
        "train",
        "dynamics",
        *two,
    ]
    result = subprocess.run(launch, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["processes"] == 2
    checkpoint = latest_checkpoint(tmp / "two")
    checksums = [json.loads((checkpoint / f"rng-rank{r}.json").read_text())["weights_checksum"] for r in (0, 1)]
    assert checksums[0] == checksums[1]  # both ranks hold the same weights

    threads = torch.get_num_threads()
    try:
        run(
            "dynamics",
            run_overrides(tmp, model_dir, tokens, "one", steps=3, **{"train.batch_size": 4, "train.threads": 1}),
        )
    finally:
        torch.set_num_threads(threads)
    one, two = weights(tmp / "one"), weights(tmp / "two")
    start = load_file(model_dir / "model.safetensors")
    # same global batches (2 ranks x 2 clips = 1 x 4): equal up to float rounding, and truly trained
    assert all(torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-5) for k in one)
    assert not torch.allclose(one["dynamics.head.weight"], start["dynamics.head.weight"])
