"""`pocketworld record`: play exported as a developer's engine exports it (video + key log) goes through
`ingest` into shards whose frames and actions are the ones played, level changes included."""

import json
import stat

import numpy as np

from core.cli import main
from core.data.export import ExportConfig, export_play
from core.data.shards import list_shards, read_shard, split_of
from core.games import make_game
from finetune.action_log import read_action_log
from finetune.ingest import IngestConfig, ingest


def replay(seeds, actions, max_steps):
    """The frames (T, 256, 256, 3) `actions` play from level seeds[0], on to the next seed when a level ends."""
    game = make_game("bricks", num_envs=1, max_steps=max_steps)
    levels = iter(seeds)
    frames = [game.reset([next(levels)])[0]]
    for action in actions[:-1]:
        out, done = game.step(np.array([action]))
        frames.append(game.reset([next(levels)])[0] if done[0] else out[0])
    return np.stack(frames)


def test_recorded_play_ingests_into_the_frames_and_keys_played(tmp_path):
    config = ExportConfig(frames=100, split="test", seed=0, max_steps=40)  # short levels: it crosses two level changes
    summary = export_play(config, tmp_path / "play.mp4", tmp_path / "play.csv", progress=False)
    assert summary["frames"] == 100 and summary["levels"] == 3 and all(split_of(s) == "test" for s in summary["seeds"])
    keys = read_action_log(tmp_path / "play.csv").actions
    assert len(keys) == 100 and len(set(keys.tolist())) > 1
    assert stat.S_IMODE((tmp_path / "play.mp4").stat().st_mode) == 0o644  # a file to share, not a private temp

    shards, small = tmp_path / "shards", IngestConfig(game="bricks", chunk=32)
    ingest(tmp_path / "play.mp4", shards, tmp_path / "play.csv", small, progress=False)
    samples = sorted(
        (s for shard in list_shards(shards) for s in read_shard(shard)), key=lambda s: s.meta["start_frame"]
    )
    actions = np.concatenate([s.actions for s in samples])
    frames = np.concatenate([s.frames for s in samples]).astype(np.int64)
    np.testing.assert_array_equal(actions[:-1], keys[:-1])  # the last is the shard format's end-of-episode pad

    played = replay(summary["seeds"], keys, config.max_steps).astype(np.int64)
    assert len(frames) == len(played) == 100

    def error(a, b):  # mean absolute difference per frame
        return np.abs(a - b).mean((1, 2, 3))

    assert error(frames, played).max() < 6  # H.264 at CRF 20 (~3 levels of 255): each frame is the one played...
    moved = (played[1:] != played[:-1]).any((1, 2, 3))
    assert moved.sum() > 80  # ...not its neighbour, which differs
    assert (error(frames[:-1], played[:-1]) < error(frames[:-1], played[1:]))[moved].all()
    assert (error(frames[1:], played[1:]) < error(frames[1:], played[:-1]))[moved].all()


def test_the_record_command_writes_webm_and_json_and_never_overwrites(tmp_path, capsys):
    args = ["record", "--agent", "held", "--minutes", "0.05", "--split", "val", "--no-progress"]
    args += ["--out", str(tmp_path / "run.webm"), "--keys", str(tmp_path / "run.json")]
    assert main(args) == 0
    log = json.loads((tmp_path / "run.json").read_text())
    assert log["fps"] == 30 and len(log["actions"]) == 90 and "pocketworld ingest" in capsys.readouterr().out
    before = (tmp_path / "run.webm").read_bytes()
    assert main(args) == 2 and "never overwritten" in capsys.readouterr().err
    assert (tmp_path / "run.webm").read_bytes() == before
    assert main([*args[:-4], "--out", str(tmp_path / "a.avi"), "--keys", str(tmp_path / "a.csv")]) == 2
    assert not (tmp_path / "a.avi").exists() and not (tmp_path / "a.csv").exists()
