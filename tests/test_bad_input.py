"""Hostile and unlucky input, each case made here and small: a save racing the game, unknown
models and busy ports, absurd frame rates, half-made registry folders. Every one must end in a
clear message (or a correct result), never a traceback or unbounded work."""

import io
import json
import os
import shutil
import socket
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from core.cli import main
from core.data.shards import Sample, ShardWriter
from core.play.recording import Recording
from core.world_model import WorldModel
from finetune.registry import STALE_STAGE_S, LocalRegistry
from finetune.errors import ActionLogError, IngestError, LimitError
from finetune.ingest import IngestConfig, ingest
from finetune.lora import add_lora, save_adapter
from finetune.sources import Limits


def jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, shade, shade)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_saving_a_recording_while_the_game_appends_frames(tmp_path, monkeypatch):
    recording = Recording()
    for i in range(4):
        recording.add(jpeg(i * 40), time_s=i / 10)
    real_open = Image.open

    def open_while_playing(*args, **kwargs):  # the stream's thread adds a frame mid-save, every time
        recording.add(jpeg(200), time_s=1.0)
        return real_open(*args, **kwargs)

    monkeypatch.setattr("core.play.recording.Image.open", open_while_playing)
    path = recording.save(tmp_path / "mid-game.gif", "gif")
    monkeypatch.undo()
    with Image.open(path) as gif:
        assert gif.n_frames == 4  # the frames there when Save was pressed
    assert len(recording) == 8 and np.asarray(recording.frames()[-1]).mean() > 150


@pytest.fixture
def adapter(tmp_path):
    torch.manual_seed(0)
    return save_adapter(add_lora(WorldModel(tiny_config()), "test-tiny"), tmp_path / "adapter")


def test_a_push_killed_mid_copy_is_neither_listed_nor_left_for_ever(tmp_path, adapter):
    registry = LocalRegistry(tmp_path / "registry")
    registry.push(adapter, "ana/jumpy", game="Jumpy")
    owner = tmp_path / "registry" / "ana"
    stale, running = owner / ".killed.k1ll3d.partial", owner / ".copying.n0w.partial"
    for stage in (stale, running):  # what staged_folder leaves when the push dies after copying the card
        shutil.copytree(owner / "jumpy", stage)
    hours_ago = time.time() - 2 * STALE_STAGE_S
    os.utime(stale, (hours_ago, hours_ago))
    outside = tmp_path / "keep-me"
    outside.mkdir()
    (owner / ".linked.partial").symlink_to(outside, target_is_directory=True)

    assert [entry.repo for entry in registry.list()] == ["ana/jumpy"]
    registry.push(adapter, "ana/second", game="Jumpy")
    assert not stale.exists() and running.is_dir() and outside.is_dir()  # only the abandoned one goes
    assert [entry.repo for entry in registry.list()] == ["ana/jumpy", "ana/second"]


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("fps", ["0.001", "0", "-30", "nan", "1e9"])
def test_a_frame_rate_outside_1_to_240_is_refused_before_any_work(tmp_path, capsys, fps):
    (tmp_path / "frames").mkdir()
    assert main(["ingest", str(tmp_path / "frames"), "--out", str(tmp_path / "out"), "--fps", fps]) == 2
    assert "--fps must be a number from 1 to 240" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", [0.001, 0, 1000])
def test_an_action_log_frame_rate_outside_the_range_is_refused(tmp_path, fps):
    with zipfile.ZipFile(tmp_path / "run.zip", "w") as archive:
        for index in range(40):
            archive.writestr(f"frames/{index:03d}.png", png(index))
        archive.writestr("frames/actions.json", json.dumps({"fps": fps, "actions": ["LEFT"] * 40}))
    with pytest.raises(ActionLogError, match="'fps' must be a number from 1 to 240"):
        ingest(tmp_path / "run.zip", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", [0, 0.001, "30"])
def test_a_shard_whose_meta_frame_rate_is_absurd_is_refused(tmp_path, fps):
    writer = ShardWriter(tmp_path / "shards")
    meta = {"game": "maze", "seed": 1, "fps": fps, "split": "train", "start_frame": 0}
    writer.write(Sample(np.zeros((2, 256, 256, 3), np.uint8), np.ones(2), np.zeros((2, 0)), meta))
    writer.close()
    with pytest.raises(IngestError, match="meta.json's 'fps' must be a number from 1 to 240"):
        ingest(tmp_path / "shards", tmp_path / "out", progress=False)


def test_timestamps_far_apart_cannot_repeat_a_frame_past_the_length_limit(tmp_path):
    import av
    from fractions import Fraction

    with av.open(str(tmp_path / "gap.mkv"), "w") as container:  # two frames, ten minutes apart
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for index, pts in enumerate((0, 30 * 600)):
            image = av.VideoFrame.from_ndarray(np.full((24, 32, 3), index * 200, np.uint8), format="rgb24")
            image.pts = pts
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    (tmp_path / "log.csv").write_text("frame,keys\n0,LEFT\n1,LEFT\n")
    config = IngestConfig(limits=Limits(max_frames=300))
    with pytest.raises(LimitError, match="longer than 300 frames at 30 FPS"):
        ingest(tmp_path / "gap.mkv", tmp_path / "out", tmp_path / "log.csv", config, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_serving(tmp_path, monkeypatch):
    """`pocketworld play` as far as it gets before serving: a launch would mean the check let it through."""
    import gradio

    def launch(*args, **kwargs):
        raise AssertionError("the app started serving")

    monkeypatch.setattr(gradio.Blocks, "launch", launch)
    monkeypatch.setenv("POCKETWORLD_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)  # the test process keeps its own


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_play_with_an_unknown_model_is_a_one_line_error_not_a_page(no_serving, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert main(["play", "--model", "huge", "--port", str(free)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pocketworld play: error: unknown model 'huge'; choose one of nano") and "\n" not in err


def test_play_start_up_names_the_share_option_a_cli_user_has(no_serving, tmp_path, monkeypatch, capsys):
    import tempfile

    import gradio

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the app's recordings and fine-tune folders

    launched = {}

    def launch(demo, **options):  # what Gradio would print goes by `quiet`; stand in for the server
        launched.update(options)
        demo.local_url = f"http://127.0.0.1:{options['server_port']}/"

    monkeypatch.setattr(gradio.Blocks, "launch", launch)
    monkeypatch.setattr(gradio.Blocks, "block_thread", lambda demo: None)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 7861)) == 0:
            pytest.skip("port 7861 is in use on this machine")
    assert main(["play", "--loop", "timer"]) == 0
    out = capsys.readouterr().out
    assert launched["quiet"] is True and launched["server_port"] == 7861
    assert "http://127.0.0.1:7861/" in out and "--share" in out and "share=True" not in out


def test_a_taken_port_is_named_with_how_to_choose_another(no_serving, busy_port, monkeypatch, capsys):
    assert main(["play", "--port", str(busy_port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"port {busy_port} on 127.0.0.1 is taken" in err and f"--port {busy_port + 1}" in err and "\n" not in err
    monkeypatch.setenv("GRADIO_SERVER_PORT", str(busy_port))  # the variable Gradio's own hint names now works
    assert main(["play"]) == 2 and f"port {busy_port} on 127.0.0.1 is taken" in capsys.readouterr().err
    monkeypatch.setenv("GRADIO_SERVER_PORT", "web")
    assert main(["play"]) == 2 and "GRADIO_SERVER_PORT must be a port number" in capsys.readouterr().err


def write_report(folder, psnr: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"metrics": {"reconstruction": {"tokenizer_psnr": psnr}},
                                                     "info": {"model": "nano", "game": "maze"}}))
    Image.new("RGB", (8, 8)).save(folder / "drift_curve.png")


def test_the_benchmarks_tab_follows_no_link_out_of_the_folder_it_reads(tmp_path, monkeypatch):
    from core.play.benchmarks import BENCH_PLAY_FILE, EVAL_DIR, show_benchmarks

    secret = tmp_path / "secret"
    write_report(secret, 99.0)
    (secret / "bench.json").write_text(json.dumps({"variant": "secret", "fps": 1.0}))
    report = tmp_path / "app" / "report"
    report.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "app")  # the pasted folder is inside the app's folder; its files link out
    (report / "results.json").symlink_to(secret / "results.json")
    text, plots = show_benchmarks("nano", str(report))
    assert "outside" in text and "| 99 |" not in text and plots == []

    write_report(report / "own", 31.0)  # a real report whose plot links out, beside one that stays inside
    (report / "own" / "secret_curve.png").symlink_to(secret / "drift_curve.png")
    (report / "own" / "same_curve.png").symlink_to(report / "own" / "drift_curve.png")
    text, plots = show_benchmarks("nano", str(report / "own"))
    assert "| 31 |" in text and sorted(caption for _, caption in plots) == ["drift curve (maze)", "same curve (maze)"]

    zoo = tmp_path / "zoo"
    eval_dir = zoo / "nano" / EVAL_DIR
    eval_dir.mkdir(parents=True)
    monkeypatch.setenv("POCKETWORLD_ZOO", str(zoo))
    (eval_dir / "maze").symlink_to(secret, target_is_directory=True)
    (eval_dir / BENCH_PLAY_FILE).symlink_to(secret / "bench.json")
    text, plots = show_benchmarks("nano", "")
    assert text.count("> Could not read:") == 2 and "| 99 |" not in text and "secret |" not in text and plots == []


def test_evaluate_checks_an_adapter_as_finetune_does(tmp_path, adapter):
    from core.zoo import load as load_model
    from finetune.lora import AdapterError

    WorldModel(tiny_config()).save_pretrained(tmp_path / "model")
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "r": config["r"] * 2}))  # says rank 16, holds rank-8 tensors
    with pytest.raises(AdapterError, match="has shape .* the model needs"):  # was a torch size-mismatch traceback
        load_model(str(tmp_path / "model"), str(adapter))
    config_path.write_text(json.dumps(config))
    (adapter / "adapter_model.bin").write_bytes(b"a pickle")
    with pytest.raises(AdapterError, match=r"pickle files \(adapter_model.bin\)"):  # was silently ignored
        load_model(str(tmp_path / "model"), str(adapter))
    (adapter / "adapter_model.bin").unlink()
    merged = load_model(str(tmp_path / "model"), str(adapter))
    assert not any("lora" in name for name, _ in merged.named_parameters())  # loaded and merged
