"""Quality filter, shards (atomic writes, resume, truncation) and both readers."""

import json
import sys
import tarfile

import numpy as np
import pytest
import torch

from core.data.quality import QualityConfig, QualityReport, label_frames, segments
from core.data.recorder import CollectConfig, Collector
from core.data.shards import DATA_VERSION, SPLITS, Sample, ShardWriter, list_shards, read_shard, split_of
from core.train.data import GAMEPLAY, index_shards, validation_batches


def moving_frames(count, seed=0):
    """Frames of a square moving one pixel a frame over noise: every frame differs from the last."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    frames = np.repeat(background[None], count, axis=0)
    for t in range(count):
        frames[t, 100:120, t % 230 : (t % 230) + 20] = (255, 0, 0)
    return frames


def test_filter_drops_planted_stuck_blank_corrupt_and_duplicate_frames():
    frames = moving_frames(300)
    frames[100:150] = frames[100]  # stuck: 50 identical frames
    frames[200] = 0  # blank
    frames[230] = np.random.default_rng(1).integers(0, 255, (256, 256, 3))  # corrupt one-frame spike
    positions = np.arange(300)[:, None].astype(float)  # the player kept moving...
    positions[100:150] = 100  # (except while stuck)
    frames[260] = frames[259]  # ...but this frame repeats the last: duplicate
    labels = label_frames(frames, positions, QualityConfig(stuck_frames=30, min_segment=8))
    assert (labels[101:149] == "stuck").all() and labels[100] == "ok" and labels[149] == "ok"
    assert labels[200] == "blank" and labels[230] == "corrupt" and labels[260] == "duplicate"
    assert (labels[:100] == "ok").all() and (labels[270:] == "ok").all()
    assert segments(labels)[0] == (0, 101)
    report = QualityReport()
    report.add(labels)
    assert report.to_dict()["dropped"]["stuck"] == 48 and "kept" in report.summary()


def test_filter_drops_short_segments_and_keeps_short_pauses():
    frames = moving_frames(100)
    frames[40:50] = frames[40]  # a 10-frame pause is play, not a stuck stretch
    frames[95] = 0  # leaves a 4-frame tail: too short for a clip
    labels = label_frames(frames, config=QualityConfig(stuck_frames=30, min_segment=32))
    assert (labels[:95] == "ok").all() and (labels[96:] == "short").all()


def write_samples(folder, count=3, frames=40, split_seed=0):
    writer = ShardWriter(folder, max_bytes=1)  # one sample per shard
    samples = []
    for k in range(count):
        sample = Sample(
            moving_frames(frames, seed=k),
            np.arange(frames) % 18,
            np.random.rand(frames, 5).astype(np.float32),
            {
                "game": "platformer",
                "seed": split_seed + k,
                "split": "train",
                "start_frame": 0,
                "agent": "random",
                "version": DATA_VERSION,
            },
        )
        writer.write(sample)
        samples.append(sample)
    writer.close()
    return samples


def test_shards_round_trip_through_both_readers(tmp_path):
    samples = write_samples(tmp_path)
    assert [p.name for p in list_shards(tmp_path)] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    back = [s for shard in list_shards(tmp_path) for s in read_shard(shard)]
    for original, restored in zip(samples, back):
        np.testing.assert_array_equal(original.frames, restored.frames)
        np.testing.assert_array_equal(original.actions, restored.actions)
        np.testing.assert_array_equal(original.state, restored.state)

    # the training reader cuts the same frames and actions out of them
    refs = index_shards([str(tmp_path)], GAMEPLAY, split=None)
    first = validation_batches(refs, clip_len=16, clips=6, batch_size=6)[0]
    assert first["frames"].dtype == torch.uint8 and first["frames"].shape == (6, 16, 256, 256, 3)
    np.testing.assert_array_equal(first["frames"][0].numpy(), samples[0].frames[:16])
    np.testing.assert_array_equal(first["actions"][1].numpy(), samples[0].actions[16:32])
    spread = validation_batches(refs, clip_len=16, clips=3, batch_size=3)[0]  # one clip of each sample, not 2 of one
    for clip, sample in zip(spread["frames"].numpy(), samples):
        np.testing.assert_array_equal(clip, sample.frames[:16])

    from core.data.hf_datasets import load_gameplay, to_arrays

    dataset = load_gameplay(tmp_path, split="train", cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == 3
    rows = {to_arrays(row)["meta"]["seed"]: to_arrays(row) for row in dataset}
    np.testing.assert_array_equal(rows[1]["frames"], samples[1].frames)
    np.testing.assert_array_equal(rows[1]["actions"], samples[1].actions)


def test_truncated_shard_is_skipped_with_a_warning_naming_it(tmp_path):
    write_samples(tmp_path)
    broken = tmp_path / "shard-000001.tar"
    broken.write_bytes(broken.read_bytes()[:5000])
    with pytest.warns(UserWarning, match="shard-000001.tar"):
        refs = index_shards([str(tmp_path)], GAMEPLAY, split=None)
    assert len(refs) == 2


def test_splits_are_fixed_by_seed_and_recorded():
    splits = [split_of(seed) for seed in range(2000)]
    assert set(splits) == {"train", "val", "test"} and 0.85 < splits.count("train") / 2000 < 0.95
    assert "unseen" in SPLITS


def test_collect_writes_filtered_shards_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "shards"
    config = CollectConfig(game="shooter", agent="random", frames=200, num_envs=2, chunk=64, max_steps=150)
    summary = Collector(config, out, progress=False).run()
    assert summary["frames_written"] >= 200 and not list(out.glob("*.partial"))
    samples = [s for shard in list_shards(out) for s in read_shard(shard)]
    meta = samples[0].meta
    assert meta["game"] == "shooter" and meta["agent"] == "random" and meta["fps"] == 30 and meta["version"] == 1
    assert meta["split"] == split_of(meta["seed"]) and "player_pos" in meta["state_layout"]
    assert all(s.actions.max() < 18 for s in samples)
    assert json.loads((out / "report.json").read_text())["quality"]["frames_in"] > 0
    with pytest.raises(FileExistsError, match="--resume"):
        Collector(config, out, progress=False)

    # a run killed mid-shard leaves a .partial; --resume removes it and adds new levels only
    (out / "shard-000099.tar.partial").write_bytes(b"half a shard")
    keys_before = {s.key() for s in samples}
    more = CollectConfig(game="shooter", agent="random", frames=400, num_envs=2, chunk=64, max_steps=150)
    Collector(more, out, resume=True, progress=False).run()
    keys_after = [s.key() for shard in list_shards(out) for s in read_shard(shard)]
    assert len(keys_after) == len(set(keys_after)) and keys_before < set(keys_after)
    assert not list(out.glob("*.partial"))
    with pytest.raises(ValueError, match="different settings"):
        Collector(CollectConfig(game="maze", agent="random", frames=10), out, resume=True, progress=False)


def test_preview_draws_actions(tmp_path):
    from PIL import Image

    from core.data.preview import write_preview

    write_samples(tmp_path / "s", count=1)
    result = write_preview(tmp_path / "s", tmp_path / "p.gif", max_frames=10)
    assert result["frames"] == 10 and Image.open(tmp_path / "p.gif").n_frames == 10
    with pytest.raises(ValueError, match="no sample 5"):
        write_preview(tmp_path / "s", tmp_path / "q.gif", sample=5)
    with pytest.raises(ValueError, match=".gif, .mp4"):
        write_preview(tmp_path / "s", tmp_path / "q.png")


def test_writer_leaves_only_complete_shards(tmp_path):
    writer = ShardWriter(tmp_path, max_bytes=10**9)
    writer.write(Sample(moving_frames(4), np.zeros(4), np.zeros((4, 0)), {"game": "maze", "seed": 1, "start_frame": 0}))
    assert [p.name for p in tmp_path.iterdir()] == ["shard-000000.tar.partial"]
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["shard-000000.tar"]
    assert tarfile.is_tarfile(tmp_path / "shard-000000.tar")


def test_reading_shards_as_a_dataset_without_the_extra_says_which_to_install(tmp_path, monkeypatch):
    from core.data.hf_datasets import load_gameplay

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the `datasets` extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'pocketworld\[datasets\]'"):
        load_gameplay(tmp_path)
