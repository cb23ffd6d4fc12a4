"""LoRA fine-tuning of a frames-family base (nano v2): its default targets (the FiLM blocks' convolutions
and film layers), Conv2d adapters that reload and merge exactly, bad targets refused by name, and
`pocketworld finetune` reading gameplay shards directly. The measured test trains a tiny base on a
moving-square game, then fine-tunes it on the same game with mirrored controls: the base predicts the
square moving the wrong way, the fine-tune learns the new keys."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file, save_file

from core.actions import ACTION_IDS
from core.cli import main
from core.data.shards import DATA_VERSION, Sample, ShardWriter
from core.frame_dynamics import unrolled_loss
from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig
from core.train.checkpoint import CheckpointError
from core.train.config import load_run_config, save_run_config
from core.train.frames import FramesStage
from core.train.loop import prepare_run_dir
from core.world_model import WorldModel
from finetune.cards import check_card
from finetune.lora import (
    CONFIG_FILE,
    FAMILY_TARGETS,
    WEIGHTS_FILE,
    AdapterError,
    LoraSettings,
    add_lora,
    load_adapter,
    merge_adapter,
    save_adapter,
    trainable_parameters,
    validate_adapter,
)
from finetune.train import CURVE_FILE, LOOP_FLAGS, FinetuneConfig, finetune
from tests.conftest import tiny_config
from tests.test_finetune_app import wait_for
from tests.test_frames_family import frames_config
from tests.train_fixtures import save_tiny_model, write_gameplay_shards, write_token_shards

BASE = "test-frames"
KEYS = [ACTION_IDS[name] for name in ("NOOP", "UP", "DOWN", "LEFT", "RIGHT")]
MOVES = {
    ACTION_IDS["UP"]: (-1, 0),
    ACTION_IDS["DOWN"]: (1, 0),
    ACTION_IDS["LEFT"]: (0, -1),
    ACTION_IDS["RIGHT"]: (0, 1),
}
SMALL, SIDE = 16, 3  # the game is drawn on the dynamics' 16x16 grid; the square is 3 cells wide


def square_game(clips: int, length: int, seed: int, mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A yellow square on blue that the arrow keys move one cell per frame (the opposite way when
    `mirrored`): frames (N, T, 16, 16, 3) uint8 and the keys pressed at each frame (N, T)."""
    rng = np.random.default_rng(seed)
    frames = np.empty((clips, length, SMALL, SMALL, 3), np.uint8)
    frames[:] = (20, 30, 90)
    actions = rng.choice(KEYS, (clips, length))
    for clip in range(clips):
        y, x = rng.integers(0, SMALL - SIDE, 2)
        for t in range(length):
            frames[clip, t, y : y + SIDE, x : x + SIDE] = (250, 220, 40)
            dy, dx = MOVES.get(int(actions[clip, t]), (0, 0))
            sign = -1 if mirrored else 1
            y, x = np.clip(y + sign * dy, 0, SMALL - SIDE), np.clip(x + sign * dx, 0, SMALL - SIDE)
    return frames, actions


def write_square_shards(folder, splits: dict[str, tuple[int, int, int]], mirrored: bool = False):
    """The square game as gameplay shards at 256x256 (each cell 16x16 pixels, so pooling gives the grid back);
    `splits`: {split: (clips, frames per clip, seed)}."""
    writer = ShardWriter(folder)
    for split, (clips, length, seed) in splits.items():
        frames, actions = square_game(clips, length, seed, mirrored)
        for i in range(clips):
            meta = {
                "game": "mirrored-square" if mirrored else "square",
                "seed": seed * 100 + i,
                "split": split,
                "start_frame": 0,
                "fps": 30,
                "version": DATA_VERSION,
            }
            full = frames[i].repeat(256 // SMALL, axis=1).repeat(256 // SMALL, axis=2)  # (T, 256, 256, 3)
            writer.write(Sample(full, actions[i], np.zeros((length, 0), np.float32), meta))
    writer.close()
    return folder


def small_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, T, r, r, 3) -> (N, T, 3, r, r) in [-1, 1], as the frames stage pools them."""
    return torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 127.5 - 1


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small run several times slower on two threads (the second mostly waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def square_base(tmp_path_factory):
    """A tiny frames model whose dynamics learned the square game (one-step predictions, in memory:
    the upsampler is not what this fine-tune adapts), saved as a model folder."""
    torch.manual_seed(0)
    model = WorldModel(frames_config())
    frames, actions = square_game(64, 5, seed=0)
    small, keys = small_frames(frames), torch.from_numpy(actions)
    optimizer = torch.optim.Adam(model.dynamics.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        pick = torch.randint(0, len(small), (16,), generator=generator)
        loss = unrolled_loss(model.dynamics, small[pick], keys[pick], unroll=1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("square") / "base"
    model.save_pretrained(folder)
    return folder


def perturbed_base(seed: int = 0, **dynamics) -> WorldModel:
    """A frames model with every weight non-zero (a fresh one predicts "nothing moves" whatever LoRA does)."""
    torch.manual_seed(seed)
    model = WorldModel(frames_config(**dynamics)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def clip(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(2, 4, 3, SMALL, SMALL, generator=generator) * 2 - 1,
        torch.randint(0, 18, (2, 4), generator=generator),
    )


def test_frames_defaults_target_the_film_blocks_and_freeze_the_rest():
    model = add_lora(perturbed_base(), BASE)
    wrapped = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}
    assert wrapped == set(FAMILY_TARGETS["frames"]) == {"conv1", "conv2", "film"}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert trainable_parameters(model) < 0.25 * sum(p.numel() for p in model.parameters())
    # keys at the input only: no film layers, so the default is the convolutions
    no_film = add_lora(perturbed_base(action_mode="input"), BASE)
    assert {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in no_film.named_parameters() if "lora_A" in n} == {
        "conv1",
        "conv2",
    }


def test_conv_adapters_reload_exactly_and_merge_into_the_same_function(tmp_path):
    trained = add_lora(perturbed_base(), BASE, LoraSettings(rank=4, targets=("conv1", "conv2", "film", "stem")))
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.2)
    save_adapter(trained, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / CONFIG_FILE).read_text())
    assert config["base_model_name_or_path"] == BASE and sorted(config["target_modules"]) == [
        "conv1",
        "conv2",
        "film",
        "stem",
    ]
    assert load_file(tmp_path / "adapter" / WEIGHTS_FILE)["base_model.model.stem.lora_A.weight"].shape == (4, 6, 3, 3)

    frames, actions = clip()
    with torch.no_grad():
        expected = trained.eval().dynamics(frames, actions)
        plain = perturbed_base().dynamics(frames, actions)
        standard = PeftModel.from_pretrained(perturbed_base().dynamics, str(tmp_path / "adapter")).eval()(
            frames, actions
        )
        loaded = load_adapter(perturbed_base(), tmp_path / "adapter", base=BASE)
        unmerged = loaded.dynamics(frames, actions)
        merged = merge_adapter(loaded).dynamics(frames, actions)
    assert (expected - plain).abs().max() > 1e-2  # the adapter changes the model...
    torch.testing.assert_close(standard, expected, atol=1e-5, rtol=1e-5)  # ...is standard peft...
    torch.testing.assert_close(unmerged, expected, atol=1e-5, rtol=1e-5)  # ...reloads exactly through ours...
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=1e-4)  # ...and merges into the same function
    assert not any("lora" in name for name, _ in loaded.named_parameters())

    # a conv tensor of the wrong kernel, and an adapter of the other family, are refused by name
    tensors = load_file(tmp_path / "adapter" / WEIGHTS_FILE)
    name = "base_model.model.mid.0.conv1.lora_A.weight"
    save_file({**tensors, name: torch.zeros(4, 16, 1, 1)}, tmp_path / "adapter" / WEIGHTS_FILE)
    with pytest.raises(AdapterError, match=r"has shape \(4, 16, 1, 1\), the model needs \(4, 16, 3, 3\)"):
        validate_adapter(tmp_path / "adapter", perturbed_base())
    tokens_model = add_lora(WorldModel(tiny_config()), BASE, LoraSettings(rank=2))
    save_adapter(tokens_model, tmp_path / "tokens-adapter")
    with pytest.raises(
        AdapterError,
        match="names no layer of the dynamics; layers that can be targeted: conv1, conv2, film, skip, stem, to_rgb$",
    ):
        load_adapter(perturbed_base(), tmp_path / "tokens-adapter")


def targeting(*targets) -> LoraSettings:
    return LoraSettings(rank=2, targets=targets)


def test_grouped_convs_and_names_that_are_no_layer_are_refused():
    with pytest.raises(
        AdapterError, match="'conv3' names no layer of the dynamics; layers that can be targeted: .*conv1"
    ):
        add_lora(perturbed_base(), BASE, targeting("conv3"))
    grouped = perturbed_base()
    grouped.dynamics.stem = nn.Conv2d(6, 8, 3, padding=1, groups=2)  # 2 context frames x RGB in, 8 channels out
    with pytest.raises(AdapterError, match="'stem' is a Conv2d with groups=2.*grouped or depthwise"):
        add_lora(grouped, BASE, targeting("stem"))
    with pytest.raises(AdapterError, match="'downsample' is a ModuleList; only Linear layers and plain Conv2d"):
        add_lora(perturbed_base(), BASE, targeting("downsample"))


@pytest.mark.slow
def test_a_fine_tune_learns_mirrored_controls_from_gameplay_shards(square_base, tmp_path):
    data = write_square_shards(tmp_path / "mirrored", {"train": (4, 24, 1), "val": (2, 25, 2)}, mirrored=True)
    result = finetune(
        FinetuneConfig(
            base=str(square_base),
            data=str(data),
            out=str(tmp_path / "adapter"),
            lora=LoraSettings(rank=4),
            steps=60,
            lr=1e-2,
            batch_size=8,
            threads=1,
            preview_frames=20,
            progress=False,
        )
    )
    held_out = result["held_out"]
    print(
        "\nmirrored square, held-out base -> LoRA: "
        + ", ".join(f"{name} {v['base']:.4f} -> {v['finetuned']:.4f}" for name, v in held_out.items())
        + f"; {result['seconds']} s, {result['adapter_parameters']} adapter parameters",
        file=sys.stderr,
    )
    mse, copy = held_out["dynamics_mse"], held_out["copy_last_mse"]["base"]
    assert mse["base"] > copy  # the base moves the square the wrong way
    assert mse["finetuned"] < 0.5 * mse["base"] and mse["finetuned"] < 0.75 * copy  # the fine-tune follows the keys
    assert held_out["action_gap_relative"]["base"] < 0 < 0.4 < held_out["action_gap_relative"]["finetuned"]
    assert held_out["decoder_psnr"]["base"] == held_out["decoder_psnr"]["finetuned"]  # the upsampler is not adapted
    assert result["family"] == "frames" and result["targets"] == ["conv1", "conv2", "film"]
    assert result["game"] == "mirrored-square" and result["data_frames"] == 4 * 24

    run = load_run_config(tmp_path / "adapter.run" / "config.yaml")
    assert run.stage == "frames" and run.data.clip_len == 2 + run.frames.unroll == 5 and run.data.stride == 1
    assert not (tmp_path / "adapter.run" / "tokens").exists()  # no tokenizer, no encode step
    assert (run.frames.context_noise, run.frames.changed_weight) == (0.03, 0.0)  # the base reads no noise level
    card = check_card((tmp_path / "adapter" / "README.md").read_text(), finetune=True)
    assert "held-out dynamics MSE, keys shuffled" in card.text and "conv1, conv2, film" in card.text
    # its preview: a held-out clip (left) beside the fine-tune's dream of it under the same keys (right)
    assert "![preview](preview.gif)" in card.text
    with Image.open(tmp_path / "adapter" / "preview.gif") as gif:
        assert 1 < gif.n_frames <= 21 and gif.size == (2 * 256 + 4, 256)  # (GIF merges repeated frames)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB")).astype(float)
    real, dreamed = last[:, :256], last[:, 260:]
    assert np.abs(real - dreamed).mean() < 0.25 * np.abs(real - 128).mean()  # a dream of the same scene, not noise


def test_the_context_noise_and_moved_pixel_weight_of_a_fine_tune_are_options_and_checked(tmp_path):
    from finetune.train import run_config

    folder = tmp_path / "base"
    WorldModel(frames_config(denoise_steps=2, context_level=True)).save_pretrained(folder)
    config = FinetuneConfig(base=str(folder), data=".", out=str(tmp_path / "out"), context_noise=0.3, changed_weight=5)
    frames = run_config(config, folder, tmp_path).frames
    assert (frames.context_noise, frames.changed_weight) == (0.3, 5)
    with pytest.raises(ValueError, match="context-noise must be from 0 to 1"):
        FinetuneConfig(base="nano", data=".", out="x", context_noise=2.0)
    with pytest.raises(ValueError, match="changed-weight must be >= 0, got -1"):
        FinetuneConfig(base="nano", data=".", out="x", changed_weight=-1)
    # the motion net learns on crops where the clip moves (16 small-frame pixels), or on whole frames at 0
    assert run_config(config, folder, tmp_path).frames.motion_crop == 16
    whole = FinetuneConfig(base=str(folder), data=".", out=str(tmp_path / "out"), motion_crop=0)
    assert run_config(whole, folder, tmp_path).frames.motion_crop == 0
    with pytest.raises(ValueError, match="motion-crop must be 0 or a positive multiple of 4, got 10"):
        FinetuneConfig(base="nano", data=".", out="x", motion_crop=10)
    with pytest.raises(ValueError, match="--played plays whole clips: pass --motion-crop 0"):
        FinetuneConfig(base="nano", data=".", out="x", played=True)
    assert FinetuneConfig(base="nano", data=".", out="x", played=True, motion_crop=0).played
    # --ema: the adapter shipped is the weights' moving average (the loop's train.ema_decay), 0.999 unless asked
    assert run_config(config, folder, tmp_path).train.ema_decay == 0.999
    last = FinetuneConfig(base=str(folder), data=".", out=str(tmp_path / "out"), ema=0)
    assert run_config(last, folder, tmp_path).train.ema_decay == 0
    with pytest.raises(ValueError, match="ema must be from 0 \\(off\\) to below 1, got 1.0"):
        FinetuneConfig(base="nano", data=".", out="x", ema=1.0)
    # a resume under other flags names the flags (a folder from before the average was the default: --ema 0)
    run = tmp_path / "run"
    run.mkdir()
    saved = run_config(last, folder, tmp_path)
    saved.out = str(run)
    save_run_config(saved, run / "config.yaml")
    assert prepare_run_dir(saved, True, LOOP_FLAGS) == (run, None)  # the same flags: nothing to say
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    same = run_config(last, folder, tmp_path)
    same.out = str(moved)  # a run folder moved or copied is still its run
    assert prepare_run_dir(same, True, LOOP_FLAGS) == (moved, None)
    other = run_config(FinetuneConfig(base=str(folder), data=".", out=str(tmp_path / "out"), lr=5e-4), folder, tmp_path)
    other.out = str(run)
    with pytest.raises(CheckpointError, match=r"trained with --lr 0.001 \(now 0.0005\), --ema 0.0 \(now 0.999\);"):
        prepare_run_dir(other, True, LOOP_FLAGS)


def frames_base(folder) -> str:
    WorldModel(frames_config()).save_pretrained(folder)
    return str(folder)


def test_cli_fine_tunes_a_frames_base_on_gameplay_shards(tmp_path, capsys):
    base = frames_base(tmp_path / "base")
    play = write_square_shards(tmp_path / "play", {"train": (2, 8, 1), "val": (1, 10, 2)})
    code = main(
        [
            "finetune",
            "--base",
            base,
            "--data",
            str(play),
            "--out",
            str(tmp_path / "mine"),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--rank",
            "2",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(printed.out[printed.out.rindex("\n{") + 1 :])
    assert result["steps"] == 2 and result["family"] == "frames"
    assert set(result["held_out"]) == set(FramesStage.val_metrics)
    made = {p.name for p in (tmp_path / "mine").iterdir()}
    assert {CONFIG_FILE, WEIGHTS_FILE, "README.md", CURVE_FILE} <= made
    assert "preview.gif" not in made  # no clip is longer than the preview's 60 frames
    config = json.loads((tmp_path / "mine" / CONFIG_FILE).read_text())
    assert config["r"] == 2 and config["base_model_name_or_path"] == base
    assert sorted(config["target_modules"]) == ["conv1", "conv2", "film"]
    assert not (tmp_path / "mine.run" / "tokens").exists()


def test_token_shards_and_qlora_for_a_frames_base_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    base = frames_base(tmp_path / "base")
    tokens = write_token_shards(tmp_path / "tokens", save_tiny_model(tmp_path / "tokens-model"))
    assert main(["finetune", "--base", base, "--data", str(tokens), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds token shards, but" in err and "frames-family model" in err and "pocketworld ingest" in err
    monkeypatch.setattr("finetune.train.check_quantization", lambda mode: None)  # as if on CUDA with bitsandbytes
    play = write_gameplay_shards(tmp_path / "play", samples=1, frames=8)
    assert (
        main(
            [
                "finetune",
                "--base",
                base,
                "--data",
                str(play),
                "--out",
                str(tmp_path / "a"),
                "--quantize",
                "4bit",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "is a frames-family model (convolutions): fine-tune it with --quantize none" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.run").exists()


def test_the_fine_tune_tab_runs_a_frames_base(tmp_path):
    base = frames_base(tmp_path / "base")
    play = write_gameplay_shards(tmp_path / "play", samples=1, frames=40)  # ingest asks for 33 or more
    queue = FinetuneQueue(
        FinetuneTabConfig(work_dir=tmp_path / "jobs", batch_size=1, threads=1)
    )  # clip_len 16: tokens only
    job, note = queue.submit(base, str(play), None, "Squares", 2, 2)
    assert job, note
    wait_for(queue, job, "done")
    text, curve = queue.status(job)
    assert text.startswith("Done in") and curve.endswith(CURVE_FILE)
