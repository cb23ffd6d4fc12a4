"""The data commands: games, collect, preview, bench games; bad input exits 2 with a one-line reason."""

import json

import pytest

from core.cli import main


def test_games_json(capsys):
    assert main(["games", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [g["game"] for g in listing["games"]][:3] == ["platformer", "maze", "shooter"]
    assert set(listing["agents"]) == {"random", "held", "scripted", "rl"}


def test_collect_writes_exactly_the_frames_asked_for_then_preview(tmp_path, capsys):
    from core.data.shards import list_shards, read_shard

    out = tmp_path / "shards"
    assert (
        main(
            [
                "collect",
                "--game",
                "maze",
                "--agent",
                "scripted",
                "--frames",
                "100",
                "--out",
                str(out),
                "--num-envs",
                "2",
                "--chunk",
                "64",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "wrote 100 frames" in printed and "passed the filter" in printed
    samples = [sample for shard in list_shards(out) for sample in read_shard(shard)]
    assert sum(len(sample.frames) for sample in samples) == 100  # chunks of 64 made 128 before
    assert all(sample.meta["num_frames"] == len(sample.frames) == len(sample.actions) for sample in samples)
    assert json.loads((out / "report.json").read_text())["frames_written"] == 100
    assert main(["preview", str(out), "--out", str(tmp_path / "p.gif"), "--max-frames", "8"]) == 0
    assert (tmp_path / "p.gif").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["collect", "--game", "tetris", "--agent", "random", "--frames", "10", "--out", "X"],
            "valid games: platformer",
        ),
        (["collect", "--game", "maze", "--agent", "genius", "--frames", "10", "--out", "X"], "valid agents: random"),
        (
            ["collect", "--game", "maze", "--agent", "random", "--frames", "0", "--out", "X"],
            "--frames must be positive",
        ),
        (["collect", "--game", "gym:CartPole-v1", "--agent", "scripted", "--frames", "5", "--out", "X"], "cannot play"),
        (["preview", "missing-folder", "--out", "x.gif"], "no shard or folder"),
    ],
)
def test_bad_input_exits_2_with_a_reason(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_collect_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["collect", "--game", "maze", "--frames", "10", "--out", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err and (tmp_path / "keep.txt").read_text() == "mine"


def test_bench_games_writes_json(tmp_path, capsys):
    assert main(["bench", "games", "--num-envs", "2", "--steps", "3", "--json", str(tmp_path / "b.json")]) == 0
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [r["game"] for r in rows] == ["platformer", "maze", "shooter", "bricks"] and all(
        r["frames_per_second"] > 0 for r in rows
    )
