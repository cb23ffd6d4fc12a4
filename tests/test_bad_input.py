"""Hostile and unlucky input, each case made here and small: a save racing the game, unknown
models and busy ports, absurd frame rates, half-made registry folders. Every one must end in a
clear message (or a correct result), never a traceback or unbounded work."""

import io
import json
import os
import shutil
import socket
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from core.cli import main
from core.data.shards import Sample, ShardWriter
from core.play.recording import Recording
from core.world_model import WorldModel
from finetune.action_log import read_action_log
from finetune.errors import ActionLogError, CorruptInputError, IngestError, LimitError, UnsafeArchiveError
from finetune.ingest import IngestConfig, ingest
from finetune.lora import add_lora, save_adapter
from finetune.registry import STALE_STAGE_S, LocalRegistry
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
    from fractions import Fraction

    import av

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
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
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
    monkeypatch.setenv("GRADIO_SERVER_NAME", "localhost")  # both variables a Hugging Face Space sets are honoured
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 7861)) == 0:
            pytest.skip("port 7861 is in use on this machine")
    assert main(["play", "--loop", "timer"]) == 0
    out = capsys.readouterr().out
    assert launched["quiet"] is True and launched["server_port"] == 7861 and launched["server_name"] == "localhost"
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
    (folder / "results.json").write_text(
        json.dumps({"metrics": {"reconstruction": {"tokenizer_psnr": psnr}}, "info": {"model": "nano", "game": "maze"}})
    )
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


# -- uploads that are small on disk and huge once read ---------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height grey pixels, holding one row of data: a few hundred
    bytes to make, gigabytes to decode for a reader that trusts the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(1 + min(width, 4096))))
        + chunk(b"IEND", b"")
    )


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_shard(path, samples: dict[str, dict[str, bytes]]) -> None:
    """A shard tar written member by member, so a test can put anything in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, files in samples.items():
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def sample_files(frames_png: bytes, frames: int, actions=None, meta: bytes | None = None) -> dict[str, bytes]:
    actions = np.ones(frames, np.uint8) if actions is None else actions
    meta = meta or json.dumps({"game": "maze", "seed": 1, "fps": 30, "split": "train", "start_frame": 0}).encode()
    return {
        "frames.png": frames_png,
        "actions.npy": npy(actions),
        "state.npy": npy(np.zeros((frames, 0), np.float32)),
        "meta.json": meta,
    }


def real_frames_png(frames: int) -> bytes:
    from core.data.encoding import encode_frames

    return encode_frames(np.zeros((frames, 256, 256, 3), np.uint8), level=1)


def test_a_sparse_member_in_a_shard_is_refused_before_it_is_read(tmp_path):
    if shutil.which("tar") is None:
        pytest.skip("GNU tar writes the sparse member")
    import subprocess

    staging = tmp_path / "staging"
    staging.mkdir()
    with open(staging / "000000.frames.png", "wb") as sparse:  # 4 GiB declared, nothing stored
        sparse.truncate(4 * 2**30)
    (tmp_path / "shards").mkdir()
    subprocess.run(
        [
            "tar",
            "--sparse",
            "--format=gnu",
            "-cf",
            str(tmp_path / "shards" / "shard-000000.tar"),
            "-C",
            str(staging),
            "000000.frames.png",
        ],
        check=True,
    )
    assert (tmp_path / "shards" / "shard-000000.tar").stat().st_size < 64 * 1024
    with pytest.raises(UnsafeArchiveError, match="'000000.frames.png' is a sparse file"):
        ingest(tmp_path / "shards", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_shard_member_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    write_shard(tmp_path / "shards" / "shard-000000.tar", {"000000": sample_files(real_frames_png(2), 2)})
    config = IngestConfig(limits=Limits(max_member_bytes=64))
    with pytest.raises(LimitError, match=r"'000000.frames.png' is \d+ bytes, over the 64 bytes limit"):
        ingest(tmp_path / "shards", tmp_path / "out", config=config, progress=False)


def test_a_tall_frames_image_in_a_shard_is_refused_from_its_header(tmp_path):
    tall = png_claiming(256, 655360)  # 2560 frames: 503 MB once decoded, a few hundred bytes here
    write_shard(tmp_path / "shards" / "shard-000000.tar", {"000000": sample_files(tall, 2560)})
    with pytest.raises(LimitError, match=r"holds 2560 frames in one image \(256x655360\), over the 1024-frame limit"):
        ingest(tmp_path / "shards", tmp_path / "out", progress=False)
    bomb = png_claiming(256, 256 * 4096)  # past PIL's own bomb limit: refused as the header is read
    write_shard(tmp_path / "bomb" / "shard-000000.tar", {"000000": sample_files(bomb, 4096)})
    with pytest.raises(CorruptInputError, match="too large to decode"):
        ingest(tmp_path / "bomb", tmp_path / "out", progress=False)


def test_a_shard_over_the_length_limit_is_refused_before_any_frame_is_decoded(tmp_path, monkeypatch):
    frames = real_frames_png(8)
    write_shard(
        tmp_path / "shards" / "shard-000000.tar", {"000000": sample_files(frames, 8), "000001": sample_files(frames, 8)}
    )

    def no_decoding(files):
        raise AssertionError("a sample was decoded before the shard's frames were counted")

    monkeypatch.setattr("finetune.sources.decode_sample", no_decoding)
    with pytest.raises(LimitError, match="more than 10 frames"):
        ingest(tmp_path / "shards", tmp_path / "out", config=IngestConfig(limits=Limits(max_frames=10)), progress=False)


@pytest.mark.parametrize(
    "actions, meta, message",
    [
        (np.full(4, 1.5), None, "actions must be whole action ids 0..17, got a 1-d float64 array"),
        (np.full(4, -1, np.int64), None, "actions must be whole action ids"),
        (None, b"[" * 100_000 + b"]" * 100_000, "meta.json is nested too deeply"),
    ],
)
def test_a_shard_sample_with_hostile_actions_or_meta_is_a_message(tmp_path, actions, meta, message):
    write_shard(
        tmp_path / "shards" / "shard-000000.tar", {"000000": sample_files(real_frames_png(4), 4, actions, meta)}
    )
    with pytest.raises(IngestError, match=message):
        ingest(tmp_path / "shards", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_an_action_log_nested_thousands_deep_is_a_message(tmp_path):
    (tmp_path / "log.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ActionLogError, match="nested too deeply"):
        read_action_log(tmp_path / "log.json")


@pytest.mark.parametrize(
    "width, height, message",
    [
        (1, 40_000_000, "is 1x40000000 pixels; the limit is 25 megapixels and 8192 pixels a side"),
        (10_000, 10_000, "is 10000x10000 pixels; the limit is 25 megapixels"),  # was "not an image"
        (20_000, 20_000, "is far too large to decode"),  # PIL itself refuses the header
    ],
)
def test_a_start_image_is_refused_by_its_size_before_decoding(tmp_path, width, height, message):
    from core.play.upload import StartImageError, load_start_image

    path = tmp_path / "start.png"
    path.write_bytes(png_claiming(width, height))
    started = time.perf_counter()
    with pytest.raises(StartImageError, match=message):
        load_start_image(path)
    assert time.perf_counter() - started < 1.0  # the header is read, no pixel is


# -- the Fine-tune tab: work off the request thread, nothing kept, nothing half-made ----------
@pytest.fixture
def tab_upload(tmp_path):
    from tests.train_fixtures import save_tiny_model, write_gameplay_shards

    save_tiny_model(tmp_path / "base")
    return str(tmp_path / "base"), str(write_gameplay_shards(tmp_path / "play", samples=1, frames=40))


def wait_for_job(queue, job_id, state):
    for _ in range(3000):
        if queue._jobs[job_id].state == state:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"job {job_id} never reached {state}: {queue._jobs[job_id].state}")


def test_a_fine_tune_job_keeps_nothing_it_loaded_and_checks_uploads_off_the_request_thread(
    tmp_path, tab_upload, monkeypatch
):
    import gc
    import weakref

    import finetune.ingest
    from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig

    base, play = tab_upload
    checking, real_ingest = threading.Event(), finetune.ingest.ingest

    def slow_ingest(*args, **kwargs):  # an upload that takes long to check
        checking.wait(30)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(finetune.ingest, "ingest", slow_ingest)
    loaded = []

    class Model:  # what a fine-tune loads: a model whose modules point back at it (a reference cycle)
        def __init__(self):
            self.weights, self.myself = bytearray(2**20), self

    def run(config):
        model = Model()
        loaded.append(weakref.ref(model))
        return {"held_out": {}, "seconds": 1}

    gc.disable()  # only the queue's own collection may free the cycle
    try:
        queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs"), run=run)
        started = time.perf_counter()
        job, note = queue.submit(base, play, None, "", 4, 10)
        assert note.startswith("Checking your upload") and time.perf_counter() - started < 5
        assert queue.status(job)[0].startswith("Checking your upload")
        checking.set()
        wait_for_job(queue, job, "done")
        assert len(loaded) == 1 and loaded[0]() is None  # collected as the job ended, not whenever gc runs
    finally:
        gc.enable()


def test_every_failure_of_a_fine_tune_job_is_a_message_and_leaves_no_folder(tmp_path, tab_upload, monkeypatch):
    import finetune.ingest
    from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig

    base, play = tab_upload

    def crashing_ingest(source, out, *args, **kwargs):  # half-writes, then fails in a way nobody expected
        out.mkdir(parents=True)
        (out / "shard-000000.tar").write_bytes(b"half")
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(finetune.ingest, "ingest", crashing_ingest)
    queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs"), run=lambda config: {})
    job, _ = queue.submit(base, play, None, "", 4, 10)
    wait_for_job(queue, job, "refused")
    text, curve = queue.status(job)
    assert text.startswith("Not started: an unexpected ZeroDivisionError (division by zero)") and curve is None
    assert not any((tmp_path / "jobs").iterdir())
    monkeypatch.undo()

    def crashing_run(config):
        Path(config.run_dir).mkdir(parents=True)
        raise RuntimeError("out of memory")

    queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs2"), run=crashing_run)
    job, _ = queue.submit(base, play, None, "", 4, 10)
    wait_for_job(queue, job, "failed")
    assert queue.status(job)[0].startswith("Failed: an unexpected RuntimeError (out of memory)")
    assert not any((tmp_path / "jobs2").iterdir())
    for bad in (float("nan"), float("inf"), "8"):  # what an API call can send where the slider sends numbers
        assert queue.submit(base, play, None, "", bad, 10)[1].startswith("Not started: rank must be a whole number")


# -- config.json sizes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        ({"dynamics": {"n_heads": 0}}, "dynamics.n_heads is 0; it must be from 1 to 64"),
        ({"dynamics": {"d_model": 1048576}}, "dynamics.d_model is 1048576; it must be from 4 to 4096"),
        ({"dynamics": {"d_model": 96, "n_heads": 5}}, "dynamics.d_model 96 is not divisible by n_heads 5"),
        ({"decoder": {"channels": [8, 8, 8, 16, 1 << 20]}}, "decoder.channels is .*; it must list at most 8 numbers"),
        ({"dynamics": {"mlp_ratio": float("nan")}}, "NaN is not a number JSON allows"),
        ({"dynamics": {"mlp_ratio": float("inf")}}, "Infinity is not a number JSON allows"),
        ({"extra": json.loads("[" * 50 + "]" * 50)}, "nested deeper than any config needs"),
        ("deep", "nested deeper than any config needs"),
    ],
)
def test_a_config_json_with_absurd_sizes_is_refused_before_a_model_is_built(tmp_path, monkeypatch, change, message):
    from core.config import ConfigError
    from core.zoo import model_dir

    folder = tmp_path / "model"
    WorldModel(tiny_config()).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    if change == "deep":
        (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    else:
        for section, fields in change.items():
            config[section] = {**config[section], **fields} if isinstance(fields, dict) else fields
        (folder / "config.json").write_text(json.dumps(config))

    def no_building(*args, **kwargs):
        raise AssertionError("a model was built from an unchecked config")

    monkeypatch.setattr(WorldModel, "__init__", no_building)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=message):
        model_dir(str(folder))
    assert time.perf_counter() - started < 1.0


def test_an_adapter_config_nested_thousands_deep_is_a_message(adapter):
    from finetune.lora import AdapterError, read_adapter_config

    (adapter / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(AdapterError, match="nested deeper than any config needs"):
        read_adapter_config(adapter)


# -- the frame stream ------------------------------------------------------------------------
def test_a_binary_websocket_message_gets_a_close_frame_saying_why(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from core.play.page import STREAM_PATH
    from core.play.stream import FrameStreams

    class Session:
        closed = False

    session = Session()
    streams = FrameStreams(lambda session, keys: ("frame", {"keys": keys}, b"jpeg"))
    token = streams.register(session)
    app = FastAPI()
    streams.mount(app)
    with TestClient(app) as client, client.websocket_connect(f"{STREAM_PATH}/{token}") as ws:
        ws.receive_bytes()
        ws.send_bytes(b"\x00\x01 not our page")
        message = ws.receive()
        while message["type"] == "websocket.send":  # frames already on their way
            ws.send_text("ack")
            message = ws.receive()
        assert message["type"] == "websocket.close" and message["code"] == 1003
        assert "binary messages are not accepted" in message["reason"]
