"""The IDM (labels, training, saving) and the LPIPS / FVD loaders with small random networks."""

import json

import numpy as np
import pytest
import torch
from evaluation_play import play_platformer
from safetensors.torch import save_file

from core.actions import ACTION_IDS
from core.config import ConfigError
from core.data.shards import Sample, ShardWriter
from core.evaluation import weights
from core.evaluation.effects import label_kind, visible_actions
from core.evaluation.episodes import WARMUP, load_episodes
from core.evaluation.fvd import I3D, clips_of, frechet_distance, load_i3d
from core.evaluation.idm import IDMConfig, InverseDynamics, load_idm, save_idm, score
from core.evaluation.idm_train import IDMTrainConfig, Transitions, train_idm
from core.evaluation.lpips import LPIPS, load_lpips
from core.games.base import BUTTONS, unflatten_state
from core.world_model import WeightsError


def test_platformer_presses_without_visible_effect_are_relabelled():
    frames, actions, state, layout = play_platformer(seed=3, frames=60)
    labels = visible_actions("platformer", actions[:-1], state, layout)
    fire_alone = actions[:-1] == ACTION_IDS["FIRE"]
    assert (labels[fire_alone] == ACTION_IDS["NOOP"]).all()  # FIRE only sprints: alone it shows nothing
    down = np.isin(actions[:-1], [ACTION_IDS["DOWN"]])
    assert (labels[down] == ACTION_IDS["NOOP"]).all()
    # a game without a rule keeps the commanded actions
    assert np.array_equal(visible_actions("gym:CartPole-v1", actions[:-1], state, layout), actions[:-1])
    # and a report says which labels it scored: a recording without state (an ingested video) has only the keys
    assert label_kind("platformer", layout).startswith("visible action")
    assert label_kind("platformer", {}).startswith("keys pressed (a recording without game state")
    assert label_kind("gym:CartPole-v1", layout).startswith("commanded action")


def test_platformer_sprint_shows_only_in_a_step_no_walk_draws():
    frames, actions, state, layout = play_platformer(seed=3, frames=200)
    labels = visible_actions("platformer", actions[:-1], state, layout)
    x = unflatten_state(state.astype(np.float64), layout)["player_pos"][:, 0]
    drawn = np.abs(np.floor(x[1:]) - np.floor(x[:-1]))
    sprint = BUTTONS[actions[:-1]][:, 4] & (drawn > 0)
    # the fastest levels walk 3 px a frame: a sprint drawn as a 3 px step reads as the walk alone
    as_walk = sprint & (drawn == 3)
    assert as_walk.sum() > 10 and not BUTTONS[labels[as_walk]][:, 4].any()
    assert (BUTTONS[labels[as_walk]][:, 2:4] == BUTTONS[actions[:-1][as_walk]][:, 2:4]).all()
    longer = sprint & (drawn > 3)
    assert longer.sum() > 10 and BUTTONS[labels[longer]][:, 4].all()


def test_score_counts_a_confusion_matrix():
    report = score(np.array([0, 3, 3, 4]), np.array([0, 3, 4, 4]), commanded=np.array([1, 3, 4, 4]))
    assert report.accuracy == 0.75 and report.count == 4 and report.relabelled == 0.25
    assert report.confusion[4][3] == 1 and report.confusion[3][3] == 1
    assert report.per_action == {"NOOP": 1.0, "RIGHT": 1.0, "LEFT": 0.5}


def _toy_shards(path, seeds_and_splits):
    """A square that moves 6 px per action (LEFT/RIGHT/NOOP) on a flat background."""
    writer = ShardWriter(path)
    for seed, split in seeds_and_splits:
        rng = np.random.default_rng(seed)
        actions = rng.choice([ACTION_IDS["NOOP"], ACTION_IDS["LEFT"], ACTION_IDS["RIGHT"]], 48)
        x, frames = 120, []
        for action in actions:
            frame = np.full((256, 256, 3), 40, np.uint8)
            frame[100:140, x : x + 40] = (250, 200, 30)
            frames.append(frame)
            x += {ACTION_IDS["LEFT"]: -6, ACTION_IDS["RIGHT"]: 6}.get(int(action), 0)
            x = int(np.clip(x, 0, 216))
        meta = {"game": "toy", "seed": seed, "agent": "random", "split": split, "start_frame": 0, "state_layout": {}}
        writer.write(Sample(np.stack(frames), actions, np.zeros((48, 0), np.float32), meta))
    writer.close()


def toy_idm(shards):
    """An IDM trained in a few seconds on the toy game's play written into `shards` (seed 4 held out)."""
    _toy_shards(shards, [(1, "train"), (2, "train"), (3, "train"), (4, "test")])
    return train_idm(
        shards,
        config=IDMTrainConfig(steps=60, batch=16, lr=3e-3),
        idm_config=IDMConfig(game="toy", channels=(8, 16, 16, 16)),
        progress=False,
    )


def test_idm_learns_actions_and_round_trips(tmp_path):
    model, info = toy_idm(tmp_path / "shards")
    assert info["heldout"]["accuracy"] > 0.8, info["heldout"]
    assert info["eval_seeds"] == [4] and "commanded" in info["labels"]
    save_idm(model, tmp_path / "idm", info)
    loaded, loaded_info = load_idm(tmp_path / "idm")
    assert loaded_info["heldout"] == json.loads(json.dumps(info["heldout"]))
    frames = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    assert np.allclose(loaded.predict(frames, frames[::-1])[1], model.predict(frames, frames[::-1])[1])


def test_idm_training_holds_frames_pooled_as_they_are_read(tmp_path):
    """`idm train` never holds a recording's full frames (6.6 GB for 10 minutes before): each chunk is pooled as
    it is read, into exactly what the IDM reads at prediction."""
    _toy_shards(tmp_path, [(1, "train")])
    raw, pooled = load_episodes(tmp_path, "train"), load_episodes(tmp_path, "train", pool=2)
    assert pooled[0].frames.dtype == np.uint8 and pooled[0].frames.shape == (48, 3, 128, 128)
    assert pooled[0].frames.nbytes * 4 == raw[0].frames.nbytes
    model = InverseDynamics(IDMConfig(game="toy", pool=2, channels=(8, 8, 8, 8)))
    rows = np.arange(10)
    from_raw, from_pooled = Transitions(raw, model).pairs(rows), Transitions(pooled, model).pairs(rows)
    assert all(torch.equal(a, b) for a, b in zip(from_raw, from_pooled))
    assert torch.equal(from_pooled[1], model.prepare(raw[0].frames[1:11]))
    with pytest.raises(ValueError, match="pooled by \\[2\\], the IDM pools by 4"):
        Transitions(pooled, InverseDynamics(IDMConfig(game="toy", pool=4, channels=(8, 8, 8, 8))))


def test_windows_cut_one_long_recording_into_several_rollouts(tmp_path):
    _toy_shards(tmp_path, [(1, "train")])  # one stretch of 48 frames
    whole = load_episodes(tmp_path, "train")[0]
    windows = load_episodes(tmp_path, "train", max_frames=21, windows=True)
    assert [len(w.frames) for w in windows] == [21, 21, 8]  # frames 0-20, 20-40, 40-47
    assert [w.meta["start_frame"] - whole.meta["start_frame"] for w in windows] == [0, 20, 40]
    assert np.array_equal(windows[1].frames, whole.frames[20:41]) and np.array_equal(
        windows[2].actions, whole.actions[40:]
    )
    assert len(load_episodes(tmp_path, "train", max_frames=21)) == 1  # without: the stretch's first 21 frames only
    assert len(load_episodes(tmp_path, "train", max_frames=21, windows=True, max_episodes=2)) == 2
    # each window keeps the play that led to it (a rollout's context), the first none
    assert len(windows[0].before_frames) == 0 and len(windows[0].before_actions) == 0
    assert np.array_equal(windows[1].before_frames, whole.frames[20 - WARMUP : 20])
    assert np.array_equal(windows[2].before_actions, whole.actions[40 - WARMUP : 40])


def test_a_rollout_warmed_up_on_real_play_starts_from_its_context():
    """rollout(warmup=): the dynamics' first step reads the real frames before the first and the keys pressed at
    them; padded in front with the first frame under no key, a frames-family model plays as with no warm-up."""
    from core.actions import NUM_ACTIONS
    from core.evaluation.episodes import Episode
    from core.evaluation.evaluate import _warmup
    from core.evaluation.rollouts import rollout
    from core.frames import to_model
    from core.world_model import WorldModel
    from tests.test_frame_motion import motion_config

    torch.manual_seed(0)
    model = WorldModel(motion_config()).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 256, 256, 3), dtype=np.uint8)
    keys = np.array([3, 4, 5, 6, 7, 0])
    seen = []
    step = model.dynamics.step

    def spy(inputs, actions, state, **kwargs):
        seen.append(state)
        return step(inputs, actions, state, **kwargs)

    model.dynamics.step = spy
    list(rollout(model, frames[None, 4], keys[None, 4:5], warmup=(frames[None, :4], keys[None, :4])))
    first = seen[-1]  # the state the first dreamed frame is made from
    assert torch.equal(first.frames[:, -1], model.encode(to_model(frames[None, 3])))
    assert first.recent_actions[0].tolist() == [6, 5, 4, 3][: model.config.dynamics.action_context]
    model.dynamics.step = step
    plain = next(rollout(model, frames[None, 4], keys[None, 4:5]))
    padded = next(
        rollout(model, frames[None, 4], keys[None, 4:5], warmup=(frames[None, [4, 4]], np.full((1, 2), NUM_ACTIONS)))
    )
    assert np.array_equal(plain, padded)
    # evaluate pads a window without play before it so, beside one with
    windows = [
        Episode(frames[4:], keys[4:], np.zeros((2, 0)), {}, before_frames=frames[:4], before_actions=keys[:4]),
        Episode(frames[:2], keys[:2], np.zeros((2, 0)), {}, before_frames=frames[:0], before_actions=keys[:0]),
    ]
    warm_frames, warm_keys = _warmup(windows)
    assert np.array_equal(warm_frames[1], np.repeat(frames[:1], 4, 0)) and (warm_keys[1] == NUM_ACTIONS).all()
    assert _warmup([windows[1]]) is None


def test_idm_loading_is_strict(tmp_path):
    model = InverseDynamics(IDMConfig(channels=(8, 8, 8, 8)))
    save_idm(model, tmp_path, {"game": "platformer"})
    # a user's IDM folder (ingest --label-with) is bounded before anything is built from it
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "idm.safetensors").write_bytes((tmp_path / "idm.safetensors").read_bytes())
    saved = json.loads((tmp_path / "idm.json").read_text())
    for bad in ({**saved["config"], "channels": [8, 8, 8, 100_000]}, {**saved["config"], "pool": float("nan")}):
        (tmp_path / "bad" / "idm.json").write_text(json.dumps({**saved, "config": bad}))  # json writes NaN as NaN
        with pytest.raises(ConfigError, match="channels|NaN"):
            load_idm(tmp_path / "bad")
    save_file({"head.weight": torch.zeros(1)}, str(tmp_path / "idm.safetensors"))
    with pytest.raises(WeightsError):
        load_idm(tmp_path)
    with pytest.raises(FileNotFoundError, match="idm train"):
        load_idm(tmp_path / "missing")


def test_lpips_loads_reference_layout_and_measures(tmp_path):
    torch.manual_seed(0)
    reference = LPIPS("alex")
    for k in range(5):  # the heads are non-negative in the real weights; keep that so distances are >= 0
        getattr(reference, f"lin{k}").model[1].weight.data.abs_()
    tensors = dict(reference.state_dict())
    tensors["scaling_layer.shift"] = torch.zeros(1, 3, 1, 1)  # the reference file carries these buffers too
    save_file(tensors, str(tmp_path / "lpips_alex.safetensors"))
    model = load_lpips(tmp_path / "lpips_alex.safetensors")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    b = np.roll(a, 4, axis=2)
    assert np.allclose(model.distance(a, a), 0, atol=1e-6)
    assert (model.distance(a, b) > 0).all()
    del tensors["lin0.model.1.weight"]
    save_file(tensors, str(tmp_path / "broken.safetensors"))
    with pytest.raises(WeightsError, match="missing"):
        load_lpips(tmp_path / "broken.safetensors")


def test_weights_are_searched_and_absence_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_VAR, str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    path, places = weights.find_weights("lpips_alex.safetensors")
    assert path is None and str(tmp_path / "lpips_alex.safetensors") in places[0]
    assert weights.not_found(places).startswith("not computed (weights not found at ")
    (tmp_path / "lpips_alex.safetensors").write_bytes(b"x")
    assert weights.find_weights("lpips_alex.safetensors")[0] == tmp_path / "lpips_alex.safetensors"


def test_fvd_path_with_a_small_random_i3d(tmp_path):
    torch.manual_seed(0)
    small = I3D(num_classes=8, width=1 / 16)
    for module in small.modules():  # non-trivial BN statistics, as a trained file has
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
    save_file(small.state_dict(), str(tmp_path / "i3d.safetensors"))
    model = load_i3d(tmp_path / "i3d.safetensors")
    assert model.Conv3d_1a_7x7.conv3d.out_channels == 4
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8) for _ in range(3)]
    clips = clips_of(videos)
    assert clips.shape == (6, 16, 32, 32, 3)
    embedded = model.embed(clips)
    assert np.allclose(embedded, small.embed(clips))
    assert frechet_distance(embedded, embedded) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(embedded, embedded + 1.0) == pytest.approx(8.0, rel=1e-6)  # mean shift of 1 in 8 dims
    with pytest.raises(ValueError, match="at least 2 clips"):
        frechet_distance(embedded[:1], embedded)
