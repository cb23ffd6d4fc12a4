"""The controllability lab: its data policy, its predictor learning what the keys do, and
`pocketworld bench control` end to end on a tiny recording."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.actions import ACTION_IDS, NUM_ACTIONS
from core.agents.random_play import HeldRandomAgent
from core.config import FrameDynamicsConfig
from core.frame_dynamics import FrameDynamics, recent_actions

MOVES = {
    ACTION_IDS["RIGHT"]: (0, 1),
    ACTION_IDS["LEFT"]: (0, -1),
    ACTION_IDS["UP"]: (-1, 0),
    ACTION_IDS["DOWN"]: (1, 0),
    ACTION_IDS["NOOP"]: (0, 0),
}


def test_held_agent_holds_each_random_key_for_one_to_eight_frames_whatever_the_game_shows():
    agent, other = HeldRandomAgent(4, seed=1), HeldRandomAgent(4, seed=1)
    played = np.stack([agent.act(game=None) for _ in range(400)])  # (T, 4)
    assert np.array_equal(played, np.stack([other.act(game="anything") for _ in range(400)]))
    for column in played.T:
        runs = np.diff(np.flatnonzero(np.diff(column, prepend=-1, append=-1)))
        assert runs.max() <= 16 and np.mean(runs) > 2  # two draws of the same key may join
    assert len(np.unique(played)) == NUM_ACTIONS


def square_clips(batch: int, frames: int, size: int = 16, generator=None):
    """A 3x3 white square on black, moved one pixel per frame by held random moves (wrapping)."""
    keys = torch.tensor(list(MOVES))
    actions = keys[torch.randint(0, len(keys), (batch, frames // 3 + 1), generator=generator)].repeat_interleave(3, 1)
    actions = actions[:, :frames]
    position = torch.randint(0, size, (batch, 2), generator=generator)
    video = -torch.ones(batch, frames, 3, size, size)
    deltas = torch.tensor([MOVES[int(a)] for a in keys])
    lookup = {int(a): i for i, a in enumerate(keys)}
    for t in range(frames):
        for b in range(batch):
            rows = (position[b, 0] + torch.arange(3)) % size
            cols = (position[b, 1] + torch.arange(3)) % size
            video[b, t][:, rows[:, None], cols] = 1.0
        step = deltas[[lookup[int(a)] for a in actions[:, t]]]
        position = (position + step) % size
    return video, actions


def test_film_predictor_learns_which_way_the_key_moves_the_square():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    config = FrameDynamicsConfig(resolution=16, context=2, channels=(16, 32), mid_blocks=1, action_dim=16)
    model = FrameDynamics(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        video, actions = square_clips(16, 3, generator=generator)
        predicted = model.predict(video[:, :2], recent_actions(actions, 1, config.action_context))
        loss = F.mse_loss(predicted, video[:, 2])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    video, actions = square_clips(64, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        true = F.mse_loss(model.predict(video[:, :2], recent_actions(actions, 1, 4)), video[:, 2]).item()
        mixed = actions.roll(1, dims=0)
        shuffled = F.mse_loss(model.predict(video[:, :2], recent_actions(mixed, 1, 4)), video[:, 2]).item()
        copy = F.mse_loss(video[:, 1], video[:, 2]).item()
    print(f"square toy: mse true {true:.4f}, shuffled {shuffled:.4f}, copy {copy:.4f}")
    assert true < 0.5 * copy  # it predicts motion, not the last frame
    assert shuffled > 2 * true  # and the motion it predicts is the key's


def test_an_untrained_film_block_ignores_the_keys_and_starts_as_copying():
    model = FrameDynamics(FrameDynamicsConfig(resolution=16, channels=(8, 16), mid_blocks=1)).eval()
    context = torch.rand(2, 2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        a = model.predict(context, torch.zeros(2, 4, dtype=torch.long))
        b = model.predict(context, torch.full((2, 4), 3))
    assert torch.equal(a, b) and torch.equal(a, context[:, -1])


@pytest.mark.slow
def test_bench_control_trains_an_arm_and_scores_it_and_the_baseline(tmp_path, capsys, monkeypatch):
    """A tiny recording of the maze, one short arm and the shipped nano: results, curves and a table."""
    from core.cli import main
    from core.control import lab
    from core.control.data import LabDataConfig

    small = LabDataConfig(root=str(tmp_path / "data"), train_frames=256, test_frames=256, max_steps=120)
    original = lab.LabConfig
    monkeypatch.setattr(lab, "LabConfig", lambda **kw: original(clips=3, horizon=4, idm_steps=20, data=small, **kw))
    out = tmp_path / "control"
    assert (
        main(
            [
                "bench",
                "control",
                "--arm",
                "film,nano",
                "--games",
                "maze",
                "--minutes",
                "0.08",
                "--eval-every",
                "0.03",
                "--threads",
                "1",
                "--out",
                str(out),
                "--json",
                str(out / "all.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| film |" in printed and "| nano |" in printed
    for arm in ("film", "nano"):
        results = json.loads((out / arm / "results.json").read_text())
        scores = results["last"]["games"]["maze"]
        assert {
            "mse_true",
            "mse_shuffled",
            "action_gap",
            "changed_accuracy",
            "delta_psnr_t1",
            "delta_psnr_t4",
            "idm_accuracy",
            "idm_accuracy_real",
        } <= set(scores)
        assert (out / arm / "curves.png").is_file()
    rows = [json.loads(line) for line in (out / "film" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 2 and rows[-1]["frame_views"] > rows[0]["frame_views"]
    assert json.loads((out / "film" / "results.json").read_text())["play_fps"] > 0
    assert main(["bench", "control", "--arm", "nope", "--out", str(out)]) == 2
    assert "unknown arm" in capsys.readouterr().err


def test_bench_keys_scores_a_dream_by_the_real_outcome_of_its_own_key(monkeypatch):
    """An oracle dream (the real frames) follows the keys in every trial; a dream that ignores them scores 0 dB."""
    from core.control import keys

    def real_only(model, game, seed, key, steps):
        frames = np.zeros((steps + 1, 32, 32, 3), np.uint8)
        frames[:, 8:16, 12 + (4 if key == "RIGHT" else -4) : 20 + (4 if key == "RIGHT" else -4)] = 255
        frames[0] = 0
        return frames, (frames if model == "oracle" else np.zeros_like(frames))

    monkeypatch.setattr(keys, "held_rollouts", real_only)
    config = keys.KeysConfig(games=("maze",), seeds=(1, 2), steps=4, strip_every=2)
    oracle, strips = keys.score_game("oracle", "maze", config)
    assert oracle["follows"] == oracle["trials"] == 2 and oracle["margin_db"] > 20
    assert strips[0].shape == (4 * 32, 3 * 32, 3)  # real/dream rows under each key; frames 0, 2, 4
    blind, _ = keys.score_game("blind", "maze", config)
    assert blind["follows"] == 0 and blind["margin_db"] == 0


def test_bench_keys_runs_a_model_folder_and_writes_json_and_strips(tmp_path, capsys):
    from PIL import Image

    from core.cli import main
    from core.world_model import WorldModel
    from tests.test_frames_family import frames_config

    WorldModel(frames_config()).save_pretrained(tmp_path / "model")  # untrained: its dreams ignore the keys
    code = main(
        [
            "bench",
            "keys",
            str(tmp_path / "model"),
            "--games",
            "maze",
            "--steps",
            "2",
            "--keys",
            "up,noop",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "strips"),
            "--json",
            str(tmp_path / "keys.json"),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "keys.json").read_text())
    assert result["games"][0]["game"] == "maze" and result["games"][0]["follows"] == 0
    assert result["keys"] == ["UP", "NOOP"]
    strips = sorted((tmp_path / "strips").glob("maze-*.png"))
    assert len(strips) == 3
    # under each key: real, dreamed and the dynamics' own small frames, for frame 0 (every 3rd of 2 steps)
    assert Image.open(strips[0]).size == (256, 6 * 256)
    assert "| maze |" in capsys.readouterr().out
    assert main(["bench", "keys", str(tmp_path / "model"), "--games", "chess"]) == 2
    assert "--games takes some of" in capsys.readouterr().err
    assert main(["bench", "keys", str(tmp_path / "model"), "--keys", "UP,JUMP"]) == 2
    assert "--keys takes two different keys" in capsys.readouterr().err
