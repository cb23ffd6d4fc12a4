"""Training runs in-process on tiny models: every stage trains and exports, and bad input
(missing or empty data, unknown shard versions, a checkpoint of another config, NaN loss)
stops with a clear error and overwrites nothing."""

import json

import pytest
import torch
from safetensors.torch import load_file

from core.config import ConfigError
from core.train import run_stage
from core.train.checkpoint import CheckpointError, latest_checkpoint, load_strict
from core.train.config import load_run_config
from core.train.data import DataError
from core.train.dynamics import DynamicsObjective
from core.train.loop import TrainingDiverged
from core.train.metrics import plot_run, read_metrics
from core.world_model import WorldModel
from tests.train_fixtures import run_overrides, save_tiny_model, write_gameplay_shards, write_token_shards


@pytest.fixture
def token_run(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    data = write_token_shards(tmp_path / "tokens", model)
    return tmp_path, tmp_path / "model", data


def run(stage, overrides, resume=False):
    return run_stage(load_run_config(None, overrides, stage=stage), resume=resume)


def test_dynamics_run_learns_logs_checkpoints_exports_and_plots(token_run):
    tmp, model_dir, data = token_run
    summary = run("dynamics", run_overrides(tmp, model_dir, data, "dyn", steps=6, **{"log.val_every": 3}))
    assert summary["step"] == 6 and summary["stopped"] == "done"
    lines = read_metrics(tmp / "dyn" / "metrics.jsonl")
    train = [line["loss"] for line in lines if line["split"] == "train"]
    assert len(train) == 6 and train[-1] < train[0] * 0.7  # the toy's tokens are easy: loss falls fast
    val = [line for line in lines if line["split"] == "val"]
    assert [line["step"] for line in val] == [3, 6]
    assert {"accuracy", "changed_accuracy", "rollout_accuracy"} <= set(val[-1])
    assert val[-1]["loss"] < val[0]["loss"]
    assert latest_checkpoint(tmp / "dyn").name == "step-0000006"
    assert len(list((tmp / "dyn" / "checkpoints").glob("step-*"))) == 2  # log.keep
    exported = WorldModel.from_pretrained(tmp / "dyn" / "model")
    start = WorldModel.from_pretrained(model_dir)
    assert torch.equal(exported.tokenizer.encoder[0].weight, start.tokenizer.encoder[0].weight)  # frozen part kept
    assert not torch.equal(exported.dynamics.head.weight, start.dynamics.head.weight)
    names = plot_run(tmp / "dyn", tmp / "curves.png")
    assert "loss" in names and (tmp / "curves.png").stat().st_size > 10_000


def test_long_horizon_and_distill_stages_run_on_tokens(token_run):
    tmp, model_dir, data = token_run
    summary = run(
        "long_horizon",
        run_overrides(
            tmp,
            model_dir,
            data,
            "long",
            steps=3,
            **{"long_horizon.ramp_steps": 2, "long_horizon.max_mix": 0.5, "long_horizon.passes": 2},
        ),
    )
    assert summary["step"] == 3
    mixes = [line["mix"] for line in read_metrics(tmp / "long" / "metrics.jsonl") if line["split"] == "train"]
    assert mixes == [0.0, 0.25, 0.5]  # the scheduled-sampling ramp
    summary = run(
        "distill",
        run_overrides(tmp, model_dir, data, "distill", steps=2, **{"distill.teacher": str(tmp / "long" / "model")}),
    )
    line = read_metrics(tmp / "distill" / "metrics.jsonl")[0]
    assert line["kl"] > 0 and line["feature_mse"] > 0


def test_frame_stages_tokenizer_tokens_decoder(tmp_path):
    save_tiny_model(tmp_path / "model")
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=6)
    write_gameplay_shards(tmp_path / "frames-val", samples=1, frames=6, split="val")
    common = [
        "train.batch_size=2",
        "train.steps=2",
        "log.every=1",
        "log.save_every=2",
        "log.val_every=2",
        "log.sample_every=2",
        "log.progress=false",
        "log.tensorboard=false",
        "optim.warmup_steps=1",
        f"data.train=[{shards}]",
        f"data.val=[{tmp_path / 'frames-val'}]",
        "data.val_clips=2",
    ]
    run(
        "tokenizer",
        common + [f"model.init={tmp_path / 'model'}", f"out={tmp_path / 'tok'}", "data.clip_len=1", "data.stride=2"],
    )
    assert (tmp_path / "tok" / "samples" / "step-0000002.png").is_file()
    val = [line for line in read_metrics(tmp_path / "tok" / "metrics.jsonl") if line["split"] == "val"][0]
    assert val["psnr"] > 0 and 0 < val["codes_used"] <= 1
    summary = run(
        "tokens",
        [
            f"model.init={tmp_path / 'tok' / 'model'}",
            f"tokens.out={tmp_path / 'tokens'}",
            f"data.train=[{shards}, {tmp_path / 'frames-val'}]",
            "log.progress=false",
        ],
    )
    assert summary["samples"] == 3 and summary["frames"] == 18
    encoded = load_tokens(tmp_path / "tokens")
    tokenizer = WorldModel.from_pretrained(tmp_path / "tok" / "model").tokenizer
    from core.frames import to_model
    from tests.synthetic import sprite_frames

    with torch.no_grad():
        assert torch.equal(
            torch.from_numpy(encoded["synthetic-s0-f0"].astype("int64")),
            tokenizer.encode(to_model(sprite_frames(6, seed=0))),
        )
    with pytest.raises(FileExistsError):  # the token folder is never overwritten
        run(
            "tokens",
            [
                f"model.init={tmp_path / 'tok' / 'model'}",
                f"tokens.out={tmp_path / 'tokens'}",
                f"data.train=[{shards}]",
                "log.progress=false",
            ],
        )
    run(
        "decoder",
        common
        + [f"model.init={tmp_path / 'tok' / 'model'}", f"out={tmp_path / 'dec'}", "data.clip_len=2", "data.stride=2"],
    )
    assert (tmp_path / "dec" / "samples" / "step-0000002.png").is_file()
    # dynamics reads the token shards made by this tokenizer, and refuses them for another model
    run(
        "dynamics",
        common[:-3]
        + [
            f"data.train=[{tmp_path / 'tokens'}]",
            "data.clip_len=4",
            f"model.init={tmp_path / 'tok' / 'model'}",
            f"out={tmp_path / 'dyn'}",
        ],
    )
    with pytest.raises(DataError, match="another tokenizer|encoded by tokenizer"):
        run(
            "dynamics",
            common[:-3]
            + [
                f"data.train=[{tmp_path / 'tokens'}]",
                "data.clip_len=4",
                f"model.init={tmp_path / 'model'}",
                f"out={tmp_path / 'dyn2'}",
            ],
        )
    assert not (tmp_path / "dyn2").exists()


def load_tokens(folder):
    import io
    import tarfile

    import numpy as np

    with tarfile.open(next(folder.glob("*.tar"))) as tar:
        return {
            m.name.split(".")[0]: np.load(io.BytesIO(tar.extractfile(m).read()))
            for m in tar
            if m.name.endswith("tokens.npy")
        }


def test_missing_and_empty_data_folders_are_clear_errors(token_run):
    tmp, model_dir, _ = token_run
    with pytest.raises(FileNotFoundError, match="no shard or folder"):
        run("dynamics", run_overrides(tmp, model_dir, tmp / "nowhere", "a"))
    (tmp / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        run("dynamics", run_overrides(tmp, model_dir, tmp / "empty", "b"))
    with pytest.raises(DataError, match="no data given"):
        run("dynamics", run_overrides(tmp, model_dir, "", "c")[:2] + ["data.train=[]"])
    assert not (tmp / "a").exists() and not (tmp / "b").exists()


def test_unknown_shard_versions_and_wrong_shard_kind_are_refused(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    data = write_token_shards(tmp_path / "tokens", model, version=99)
    with pytest.raises(DataError, match="version 99"):
        run("dynamics", run_overrides(tmp_path, tmp_path / "model", data, "a"))
    frames = write_gameplay_shards(tmp_path / "frames")
    with pytest.raises(DataError, match="gameplay shards but this stage reads tokens"):
        run("dynamics", run_overrides(tmp_path, tmp_path / "model", frames, "b"))


def test_a_run_folder_is_never_overwritten_and_resumes_only_with_its_config(token_run):
    tmp, model_dir, data = token_run
    run("dynamics", run_overrides(tmp, model_dir, data, "dyn", steps=2))
    before = {p: p.read_bytes() for p in (tmp / "dyn").rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="--resume"):
        run("dynamics", run_overrides(tmp, model_dir, data, "dyn", steps=4))
    with pytest.raises(CheckpointError, match="optim.lr"):
        run("dynamics", run_overrides(tmp, model_dir, data, "dyn", steps=4, **{"optim.lr": 1e-2}), resume=True)
    other = save_tiny_model(tmp / "other", d_model=48)  # another architecture
    with pytest.raises(CheckpointError, match="model.init"):
        run("dynamics", run_overrides(tmp, tmp / "other", data, "dyn", steps=4), resume=True)
    with pytest.raises(CheckpointError, match="another model config"):  # its weights never load either
        load_strict(DynamicsObjective(other.dynamics), latest_checkpoint(tmp / "dyn") / "model.safetensors")
    after = {p: p.read_bytes() for p in (tmp / "dyn").rglob("*") if p.is_file() and p.name != "config.yaml"}
    assert after == {p: b for p, b in before.items() if p.name != "config.yaml"}


def test_nan_loss_stops_before_the_update_and_keeps_the_last_good_checkpoint(token_run, monkeypatch):
    tmp, model_dir, data = token_run
    forward, calls = DynamicsObjective.forward, []

    def poisoned(self, batch):
        loss, metrics = forward(self, batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), metrics

    monkeypatch.setattr(DynamicsObjective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 3.*step-0000002 \(step 2\)"):
        run("dynamics", run_overrides(tmp, model_dir, data, "dyn", steps=6))
    assert latest_checkpoint(tmp / "dyn").name == "step-0000002"
    assert not (tmp / "dyn" / "model").exists()  # nothing exported from a diverged run
    state = json.loads((tmp / "dyn" / "checkpoints" / "step-0000002" / "state.json").read_text())
    assert state["step"] == 2
    weights = load_file(tmp / "dyn" / "checkpoints" / "step-0000002" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_config_overrides_types_and_errors(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("stage: dynamics\nout: runs/x\noptim:\n  lr: 1e-3\ntrain:\n  mixed_precision: no\n")
    config = load_run_config(path, ["train.steps=7", "optim.lr=2e-4", "data.train=[a, b]", "train.ema_decay=0"])
    assert (config.train.steps, config.optim.lr, config.data.train) == (7, 2e-4, ["a", "b"])
    assert config.train.mixed_precision == "no" and isinstance(config.train.ema_decay, float)
    toml = tmp_path / "run.toml"
    toml.write_text('stage = "tokenizer"\n[data]\ntrain = ["s"]\nclip_len = 1\n')
    assert load_run_config(toml).data.clip_len == 1
    with pytest.raises(ConfigError, match="unknown field"):
        load_run_config(path, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="expected int"):
        load_run_config(path, ["train.steps=many"])
    with pytest.raises(ConfigError, match="not 'tokenizer'"):
        load_run_config(path, stage="tokenizer")
    with pytest.raises(ConfigError, match="section.field=value"):
        load_run_config(path, ["steps"])
    with pytest.raises(ConfigError, match="distill.temperature must be positive"):  # the loss's own check
        load_run_config(path, ["distill.temperature=0"])


def test_learning_rate_schedule_warms_up_then_decays_to_the_floor():
    from core.train.config import OptimSection
    from core.train.optim import lr_at

    config = OptimSection(lr=1.0, warmup_steps=10, min_lr_ratio=0.1, schedule="cosine")
    lrs = [lr_at(step, 110, config) for step in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_a_schedule_over_a_time_budget_ends_its_decay_when_the_budget_does():
    """optim.decay_over: budget (a fine-tune's --minutes): a run its time limit stops at step 117 of 300 is at the
    floor by then, not still near the peak."""
    from core.train.config import OptimSection
    from core.train.optim import lr_at

    by_steps = OptimSection(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    by_budget = OptimSection(lr=1.0, warmup_steps=10, min_lr_ratio=0.1, decay_over="budget")
    assert lr_at(116, 300, by_steps, time_spent=1.0) > 0.7
    assert lr_at(116, 300, by_budget, time_spent=1.0) == pytest.approx(0.1)
    assert lr_at(50, 300, by_budget, time_spent=0.5) == pytest.approx(0.55)  # halfway through the budget
    assert lr_at(290, 300, by_budget, time_spent=0.1) == pytest.approx(lr_at(290, 300, by_steps))  # steps ahead
    with pytest.raises(ConfigError, match="decay_over: budget needs train.time_limit_minutes"):
        load_run_config(None, ["optim.decay_over=budget"], stage="dynamics")


def test_the_weight_average_warms_up_instead_of_keeping_the_initial_weights():
    from core.train.optim import EMA

    layer = torch.nn.Linear(4, 4)
    torch.nn.init.zeros_(layer.weight)
    ema = EMA(layer, decay=0.999)
    for _ in range(300):  # a short run whose weights moved from 0 to 1 at once
        torch.nn.init.ones_(layer.weight)
        ema.update(layer)
    assert ema.shadow["weight"].min() > 0.99  # a fixed 0.999 would still hold 74% of the zeros
    assert ema.current_decay() == pytest.approx(301 / 310)
    for _ in range(20000):
        ema.update(layer)
    assert ema.current_decay() == 0.999  # long runs average with the configured decay

    restored = EMA(layer, decay=0.999)
    restored.load_state_dict(ema.state_dict())
    assert restored.updates == ema.updates and torch.equal(restored.shadow["weight"], ema.shadow["weight"])
    old = {k: v for k, v in ema.state_dict().items() if k != EMA.COUNT_KEY}  # a checkpoint from before the counter
    restored.load_state_dict(old)
    assert restored.updates == 0  # its biased average is replaced within a few updates


def test_the_weight_average_leaves_frozen_weights_out_and_resumes_from_a_checkpoint_that_holds_them():
    """A LoRA fine-tune averages its adapter, not the whole base it does not train, every step."""
    from core.train.optim import EMA

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    model[0].requires_grad_(False)
    ema = EMA(model, decay=0.9)
    assert set(ema.shadow) == {"1.weight", "1.bias"}
    torch.nn.init.ones_(model[1].weight)
    ema.update(model)
    assert ema.shadow["1.weight"].min() > 0.5  # the trained layer is averaged
    everything = EMA(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)), decay=0.9)
    ema.load_state_dict(everything.state_dict())  # an older run's checkpoint averaged the frozen layer too
    assert torch.equal(ema.shadow["1.weight"], everything.shadow["1.weight"])
    with pytest.raises(ValueError, match="do not match the model"):
        EMA(torch.nn.Linear(4, 4), decay=0.9).load_state_dict(ema.state_dict())


def test_changed_tokens_can_outweigh_the_static_background_in_the_dynamics_loss():
    from core.train.dynamics import next_token_loss

    tokens = torch.zeros(1, 2, 100, dtype=torch.long)
    tokens[0, 1, :2] = 7  # 2 of 100 positions change: the player moved
    copying = torch.full((1, 1, 100, 8), -10.0)
    copying[..., 0] = 10.0  # a model that predicts "nothing moves"
    plain, weighted = next_token_loss(copying, tokens), next_token_loss(copying, tokens, changed_weight=49.0)
    assert plain < 0.5 and weighted > 10 * plain  # half the weighted loss is now the two movers
    assert next_token_loss(copying, torch.zeros_like(tokens), changed_weight=49.0) == next_token_loss(
        copying, torch.zeros_like(tokens)
    )  # nothing changed: the same loss
