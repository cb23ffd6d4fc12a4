"""Ingest of user gameplay: each input kind converts into readable shards at 30 FPS with actions
aligned, and every malformed input fails with a specific error naming the problem, leaving
nothing behind and nothing already stored changed."""

import io
import json
import zipfile

import av
import numpy as np
import pytest
from PIL import Image

from core import actions as vocab
from core.data.shards import Sample, ShardWriter, list_shards, read_shard
from core.evaluation.episodes import load_episodes
from finetune.action_log import read_action_log
from finetune.errors import (
    ActionLogError,
    CorruptInputError,
    IngestError,
    LengthMismatchError,
    LimitError,
    UnsafeArchiveError,
)
from finetune.ingest import IngestConfig, ingest
from finetune.sources import Limits

SMALL = IngestConfig(chunk=8, min_frames=8)


def frame(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A frame whose bright bar grows with its index, so frames are distinguishable after coding."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : (index * 3) % width + 1] = 255
    return image


def write_video(path, count: int, fps: int = 30, codec: str = "libx264", size=(64, 48)) -> None:
    pix = "rgb8" if codec == "gif" else "yuv420p"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix
        for index in range(count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame(index, size[1], size[0]), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_log(path, keys: list[str]) -> None:
    path.write_text("frame,keys\n" + "".join(f"{i},{k}\n" for i, k in enumerate(keys)))


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def samples(out) -> list[Sample]:
    return [s for shard in list_shards(out) for s in read_shard(shard)]


def test_video_at_60fps_becomes_30fps_shards_with_actions_aligned(tmp_path):
    write_video(tmp_path / "run.mp4", 40, fps=60)
    # LEFT on even frames, one-frame FIRE taps at 9 and 11: every output frame covers frames 2k, 2k+1
    keys = ["LEFT" if i % 2 == 0 else "" for i in range(40)]
    keys[9], keys[10], keys[11] = "FIRE", "", "FIRE"
    write_log(tmp_path / "run.csv", keys)
    report = ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "run.csv", SMALL, progress=False)
    got = samples(tmp_path / "out")
    actions = np.concatenate([s.actions for s in got])
    assert report["frames"] == len(actions) == 20
    assert all(s.frames.shape[1:] == (256, 256, 3) and s.meta["fps"] == 30 for s in got)
    # frames 8, 9 (LEFT, FIRE) tie: the first pressed wins; frames 10, 11 (nothing, FIRE): the tap survives
    assert actions[4] == vocab.ACTION_IDS["LEFT"] and actions[5] == vocab.ACTION_IDS["FIRE"]
    assert list(actions[:4]) == [vocab.ACTION_IDS["LEFT"]] * 4 and actions[-1] == vocab.NOOP  # episode-end pad
    assert got[-1].meta["ends_episode"] and {s.meta["split"] for s in got} == {"train", "val"}
    assert got[0].meta["game"] == "run" and got[0].meta["agent"] == "human"
    # letterboxed: 64x48 scaled to 256x192, centred on black bars of 32 rows
    assert got[0].frames[0, :32].max() == 0 and got[0].frames[0, 32:224].max() > 0


def test_gif_at_15fps_is_upsampled_and_tap_kept(tmp_path):
    write_video(tmp_path / "run.gif", 12, fps=15, codec="gif")
    keys = ["RIGHT"] * 12
    keys[3] = "FIRE"
    write_log(tmp_path / "run.csv", keys)
    ingest(tmp_path / "run.gif", tmp_path / "out", tmp_path / "run.csv", SMALL, progress=False)
    actions = np.concatenate([s.actions for s in samples(tmp_path / "out")])
    assert len(actions) == 24  # each recorded frame shown twice
    assert list(actions[6:8]) == [vocab.ACTION_IDS["FIRE"]] * 2


def test_png_zip_with_log_inside_and_json_log(tmp_path):
    with zipfile.ZipFile(tmp_path / "frames.zip", "w") as archive:
        for index in (2, 10, 1, 0, 3, 4, 5, 6, 7, 8, 9):  # natural order, not the zip's order
            archive.writestr(f"frames/f_{index}.png", png_bytes(frame(index)))
        archive.writestr("frames/actions.json", json.dumps({"fps": 30, "actions": [["ArrowUp", "z"]] * 11}))
    report = ingest(tmp_path / "frames.zip", tmp_path / "out", config=SMALL, progress=False)
    got = samples(tmp_path / "out")
    assert report["frames"] == 11 and set(np.concatenate([s.actions for s in got])[:-1]) == {vocab.ACTION_IDS["UPFIRE"]}
    assert not np.array_equal(got[0].frames[1], got[0].frames[2])  # f_1 then f_2, not f_10


def test_png_folder_and_our_own_shards(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index in range(10):
        (folder / f"{index:03d}.png").write_bytes(png_bytes(frame(index)))
    write_log(folder / "actions.csv", ["a+space"] * 10)
    ingest(folder, tmp_path / "out", config=SMALL, progress=False)
    ingest(tmp_path / "out", tmp_path / "again", config=SMALL, progress=False)  # shards in, shards out
    first, second = samples(tmp_path / "out"), samples(tmp_path / "again")
    assert all(
        np.array_equal(a.frames, b.frames) and np.array_equal(a.actions, b.actions) for a, b in zip(first, second)
    )


@pytest.mark.parametrize(
    "log, error, message",
    [
        ("frame,keys\n0,LEFT\n1,JUMP\n", ActionLogError, "line 3: unknown action 'JUMP'"),
        ("frame,keys\n0,LEFT\n2,LEFT\n", ActionLogError, "line 3: skips to frame 2"),
        ("frame,keys\n0,LEFT\n0,LEFT\n", ActionLogError, "line 3: repeats frame 0"),
        ("frame,keys\nx,LEFT\n", ActionLogError, "line 2: frame 'x' is not a whole number"),
        ("time,action\n0,LEFT\n", ActionLogError, "line 1: expected the header 'frame,keys'"),
        ("frame,keys\n0,LEFT,FIRE\n", ActionLogError, "line 2: expected 2 columns"),
        ("frame,keys\n", ActionLogError, "has no frames"),
    ],
)
def test_bad_csv_logs(tmp_path, log, error, message):
    write_video(tmp_path / "run.mp4", 10)
    (tmp_path / "log.csv").write_text(log)
    with pytest.raises(error, match=message):
        ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "log.csv", SMALL, progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "log, message",
    [
        ('{"actions": ["LEFT", 3, true]}', "entry 2: expected keys as a string"),
        ('{"actions": ["LEFT", {"frame": 1}]}', "entry 1: expected {'frame': N, 'keys': ...}"),
        ('{"actions": [{"frame": "0", "keys": "UP"}]}', "entry 0: 'frame' must be a whole number"),
        ('{"actions": ["LEFT", 99]}', "entry 1: invalid action 99"),
        ('{"actions": [["ArrowLeft", "q"]]}', "entry 0: unknown key 'q'"),
        ('{"fps": "fast", "actions": ["UP"]}', "'fps' must be a number"),
        ('{"keys": ["UP"]}', "unexpected keys"),
        ('"UP"', "got a JSON str"),
        ('[\n"UP",\n', "line 3: not valid JSON"),
    ],
)
def test_bad_json_logs(tmp_path, log, message):
    write_video(tmp_path / "run.mp4", 10)
    (tmp_path / "log.json").write_text(log)
    with pytest.raises(ActionLogError, match=message.replace("{", r"\{").replace("}", r"\}")):
        ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "log.json", SMALL, progress=False)


def test_length_mismatch_both_ways_and_too_short(tmp_path):
    write_video(tmp_path / "run.mp4", 10)
    write_log(tmp_path / "long.csv", ["UP"] * 12)
    write_log(tmp_path / "short.csv", ["UP"] * 8)
    with pytest.raises(LengthMismatchError, match="has 10 frames but long.csv has 12 entries"):
        ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "long.csv", SMALL, progress=False)
    with pytest.raises(LengthMismatchError, match="frame 8 has no action"):
        ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "short.csv", SMALL, progress=False)
    write_log(tmp_path / "ok.csv", ["UP"] * 10)
    with pytest.raises(LengthMismatchError, match="gives 10 frames at 30 FPS; at least 33"):
        ingest(tmp_path / "run.mp4", tmp_path / "out", tmp_path / "ok.csv", progress=False)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_corrupt_truncated_empty_and_wrong_type_files(tmp_path):
    write_log(tmp_path / "log.csv", ["UP"] * 10)
    (tmp_path / "text.mp4").write_text("this is not a video")
    (tmp_path / "empty.webm").write_bytes(b"")
    write_video(tmp_path / "run.gif", 10, codec="gif")
    data = (tmp_path / "run.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        ("text.mp4", CorruptInputError, "not a readable video"),
        ("empty.webm", CorruptInputError, "is empty"),
        ("cut.gif", CorruptInputError, "corrupt or truncated after frame"),
        ("notes.txt", IngestError, "unsupported input type '.txt'"),
    ]
    for name, error, message in cases:
        with pytest.raises(error, match=message):
            ingest(tmp_path / name, tmp_path / "out", tmp_path / "log.csv", SMALL, progress=False)


def test_bad_png_frames(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_bytes(png_bytes(frame(index)))
    write_log(folder / "actions.csv", ["UP"] * 3)
    (folder / "1.png").write_bytes(png_bytes(frame(1))[:60])
    with pytest.raises(CorruptInputError, match=r"frame 1 \(pngs/1.png\) is not a readable PNG"):
        ingest(folder, tmp_path / "out", config=SMALL, progress=False)
    jpeg = io.BytesIO()
    Image.fromarray(frame(1)).save(jpeg, format="JPEG")
    (folder / "1.png").write_bytes(jpeg.getvalue())
    with pytest.raises(IngestError, match="frame 1 .* is a JPEG image; frames must be PNG"):
        ingest(folder, tmp_path / "out", config=SMALL, progress=False)
    (folder / "1.png").write_bytes(png_bytes(frame(1, 32, 32)))
    with pytest.raises(IngestError, match="frame 1 is 32x32 but frame 0 is 64x48"):
        ingest(folder, tmp_path / "out", config=SMALL, progress=False)
    (folder / "1.png").write_bytes(png_bytes(frame(1)))
    (folder / "readme.doc").write_text("x")
    with pytest.raises(IngestError, match="'readme.doc', which is neither a PNG frame nor an action log"):
        ingest(folder, tmp_path / "out", config=SMALL, progress=False)
    (folder / "readme.doc").unlink()
    (folder / "actions.csv").unlink()
    with pytest.raises(IngestError, match="no action log; pass --actions"):
        ingest(folder, tmp_path / "out", config=SMALL, progress=False)


def test_unsafe_and_oversized_zips(tmp_path):
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as archive:
        archive.writestr("../../evil.png", png_bytes(frame(0)))
    with pytest.raises(UnsafeArchiveError, match="'../../evil.png' has a path that escapes"):
        ingest(tmp_path / "slip.zip", tmp_path / "out", config=SMALL, progress=False)
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0.png", bytes(8 * 2**20))  # 8 MiB of zeros deflates ~1000x
    with pytest.raises(UnsafeArchiveError, match="expands .*x \\(a zip bomb\\?\\)"):
        ingest(tmp_path / "bomb.zip", tmp_path / "out", config=SMALL, progress=False)
    with zipfile.ZipFile(tmp_path / "big.zip", "w") as archive:
        for index in range(3):
            archive.writestr(f"{index}.png", png_bytes(frame(index)))
    tight = IngestConfig(chunk=8, min_frames=1, limits=Limits(max_unpacked_bytes=100))
    with pytest.raises(UnsafeArchiveError, match="expands to .* bytes, over the 100 bytes limit"):
        ingest(tmp_path / "big.zip", tmp_path / "out", config=tight, progress=False)
    (tmp_path / "half.zip").write_bytes((tmp_path / "big.zip").read_bytes()[:100])
    with pytest.raises(CorruptInputError, match="not a readable zip archive"):
        ingest(tmp_path / "half.zip", tmp_path / "out", config=SMALL, progress=False)


def test_size_length_and_resolution_limits(tmp_path):
    write_video(tmp_path / "run.mp4", 10)
    write_log(tmp_path / "log.csv", ["UP"] * 10)
    for limits, message in [
        (Limits(max_input_bytes=100), "over the 100 bytes input limit"),
        (Limits(max_frames=5), "over the 5-frame length limit"),
        (Limits(max_side=32), "64x48, over the 32-pixel limit"),
    ]:
        with pytest.raises(LimitError, match=message):
            ingest(
                tmp_path / "run.mp4",
                tmp_path / "out",
                tmp_path / "log.csv",
                IngestConfig(chunk=8, min_frames=8, limits=limits),
                progress=False,
            )


def test_existing_data_is_never_overwritten(tmp_path):
    write_video(tmp_path / "run.mp4", 10)
    write_log(tmp_path / "log.csv", ["UP"] * 10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "shard-000000.tar").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="ingest never overwrites"):
        ingest(tmp_path / "run.mp4", out, tmp_path / "log.csv", SMALL, progress=False)
    assert (out / "shard-000000.tar").read_bytes() == b"precious"


def test_truncated_shard_is_an_error_not_a_skip(tmp_path):
    writer = ShardWriter(tmp_path / "mine")
    meta = {"game": "maze", "seed": 1, "fps": 30, "split": "train", "start_frame": 0}
    writer.write(Sample(np.zeros((9, 256, 256, 3), np.uint8), np.ones(9), np.zeros((9, 0)), meta))
    writer.close()
    shard = tmp_path / "mine" / "shard-000000.tar"
    shard.write_bytes(shard.read_bytes()[:4096])
    with pytest.raises(CorruptInputError, match="shard-000000.tar is truncated"):
        ingest(tmp_path / "mine", tmp_path / "out", config=SMALL, progress=False)


def test_cli_ingest(tmp_path, capsys):
    from core.cli import main

    write_video(tmp_path / "run.webm", 40, codec="libvpx-vp9")
    write_log(tmp_path / "run.csv", ["RIGHT"] * 40)
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "run.webm"),
                "--out",
                str(tmp_path / "out"),
                "--actions",
                str(tmp_path / "run.csv"),
                "--game",
                "mine",
                "--chunk",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "wrote 40 frames (1.33 s at 30 FPS) of mine in 1 shard(s)" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "ingest.json").read_text())["split_frames"] == {"train": 32, "val": 8}
    # a held-out recording: all of it split "test", which evaluate (and idm train's --eval-split) read
    args = ["ingest", str(tmp_path / "run.webm"), "--actions", str(tmp_path / "run.csv"), "--chunk", "16"]
    assert main([*args, "--out", str(tmp_path / "heldout"), "--split", "test", "--no-progress"]) == 0
    assert json.loads((tmp_path / "heldout" / "ingest.json").read_text())["split_frames"] == {"test": 40}
    assert [len(e.frames) for e in load_episodes(tmp_path / "heldout", "test")] == [40]
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "x"), "--split", "holdout", "--no-progress"])
    assert "invalid choice: 'holdout'" in capsys.readouterr().err
    write_log(tmp_path / "bad.csv", ["RIGHT"] * 39 + ["KICK"])
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "run.webm"),
                "--out",
                str(tmp_path / "out2"),
                "--actions",
                str(tmp_path / "bad.csv"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "bad.csv line 41: unknown action 'KICK'" in capsys.readouterr().err


def test_unlogged_play_is_labelled_by_an_idm_and_marked_pseudo_labelled(tmp_path, capsys):
    """No key log: `ingest --label-with IDM` has an inverse-dynamics model propose each frame's key (the one that
    moves it to the next frame); trained on the game, it proposes the keys that were pressed."""
    from core.cli import main
    from core.evaluation.idm import save_idm
    from tests.test_evaluation_models import _toy_shards, toy_idm

    idm, info = toy_idm(tmp_path / "labelled")
    save_idm(idm, tmp_path / "idm", info)
    _toy_shards(tmp_path / "play", [(5, "train")])  # another recording, exported as bare PNG frames
    played = samples(tmp_path / "play")[0]
    (tmp_path / "frames").mkdir()
    for index, image in enumerate(played.frames):
        (tmp_path / "frames" / f"{index:04d}.png").write_bytes(png_bytes(image))
    args = ["ingest", str(tmp_path / "frames"), "--game", "toy", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert "--label-with IDM_DIR" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "out"), "--label-with", str(tmp_path / "idm")]) == 0
    assert "pseudo-labelled" in capsys.readouterr().out
    got = samples(tmp_path / "out")
    proposed = np.concatenate([s.actions for s in got])
    assert all(s.meta["pseudo_labelled"] and s.meta["labelled_by"] == str(tmp_path / "idm") for s in got)
    assert (proposed[:-1] == played.actions[:-1]).mean() > 0.8  # the keys pressed (the last frame's is the pad)
    # laid out for review: a log of the proposed keys that --actions reads back, and a picture of them
    review = read_action_log(tmp_path / "out" / "proposed_keys.json")
    assert review.fps == 30 and np.array_equal(review.actions, proposed)
    picture = Image.open(tmp_path / "out" / "proposed_keys.png")
    assert picture.size[0] > 600 and np.asarray(picture.convert("L")).std() > 10  # drawn, not blank
    log = tmp_path / "keys.csv"
    write_log(log, ["NOOP"] * len(played.frames))
    both = ["--actions", str(log), "--label-with", str(tmp_path / "idm")]
    assert main([*args, "--out", str(tmp_path / "x"), *both]) == 2
    assert "not both" in capsys.readouterr().err
