"""Ingest user gameplay into the shards training reads (`pocketworld ingest`).

Inputs (finetune/sources.py reads them): a video (mp4/webm/gif/...) plus an action log
(finetune/action_log.py), a folder or zip of PNG frames plus an action log (which may sit inside
it as actions.csv/actions.json), or shards of our own. Frames are letterboxed to 256x256 with the
same helper the gym adapter uses and resampled to 30 FPS by sample-and-hold on their timestamps;
the action of an output frame is the one held longest over the recorded frames it covers,
ignoring NOOP if anything was pressed (so a tap survives dropped frames), the first pressed
among ties. Output samples follow
core/data/shards.py, with agent "human" and no ground-truth state.

Everything is written into a hidden staging folder beside `out` and renamed into place only when
the whole recording has been read and checked, so a bad input (each problem a specific
IngestError naming the file and the frame, line or entry) leaves nothing behind, and an existing
folder with content is never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core import actions as vocab
from core.atomic import staged_folder
from core.data.shards import DATA_VERSION, Sample, ShardWriter
from core.games.gym_adapter import letterbox
from finetune.action_log import ActionLog, parse_action_log, read_action_log
from finetune.errors import IngestError, LengthMismatchError, LimitError
from finetune.review import PROPOSED_KEYS, REVIEW_PICTURE, KeyReview
from finetune.sources import (
    VIDEO_SUFFIXES,
    FrameSource,
    Limits,
    check_fps,
    open_png_folder,
    open_png_zip,
    open_video,
    read_shards_strict,
)

TIME_TOLERANCE = 1e-3  # seconds: container timestamps are rounded to their time base
REPORT_FILE = "ingest.json"
INGEST_SPLITS = ("auto", "train", "val", "test")


@dataclass
class IngestConfig:
    game: str | None = None  # game name stored in the shards; None: the file's stem (or the shards' own)
    fps: float | None = None  # the recording's frame rate; None: the video's, else the log's, else 30 for PNGs
    target_fps: int = 30  # the model's frame rate (every game runs at 30 FPS)
    min_frames: int = 33  # fewer frames after resampling cannot make one 32-frame training clip + target
    chunk: int = 128  # frames per shard sample, as `pocketworld collect` writes
    val_every: int = 10  # every val_every-th chunk (and the last, if none was) is held out as split "val"...
    idm: str | None = None  # an IDM folder (`pocketworld idm train`) that proposes the keys of a recording without
    # a log: its shards are marked pseudo_labelled
    split: str = "auto"  # ...("auto"), or the whole recording is one split: "test" marks a held-out recording for
    # `pocketworld evaluate` and `idm train --eval-split test`; "train"/"val" as they say
    shard_mb: int = 256  # shard size in MB
    limits: Limits = field(default_factory=Limits)  # input size, length and resolution limits

    def __post_init__(self):
        if isinstance(self.limits, dict):
            self.limits = Limits(**self.limits)
        if self.fps is not None:
            self.fps = check_fps(self.fps, "--fps")
        if min(self.target_fps, self.min_frames, self.chunk, self.val_every, self.shard_mb) <= 0:
            raise ValueError("target_fps, min_frames, chunk, val_every and shard_mb must be positive")
        if self.split not in INGEST_SPLITS:
            raise ValueError(f"--split must be one of {', '.join(INGEST_SPLITS)}, got {self.split!r}")


def ingest(
    source: str | Path,
    out: str | Path,
    actions: str | Path | None = None,
    config: IngestConfig | None = None,
    progress: bool = True,
) -> dict:
    """Validate and convert `source` (+ its action log) into shards in the new folder `out`; returns the report."""
    config = config or IngestConfig()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"no gameplay at {source}")
    _check_out(out)
    review = None  # pseudo-labelled keys are laid out for a person to check (finetune/review.py)
    if _is_shards(source):
        if actions is not None:
            raise IngestError("shards carry their own actions; drop --actions")
        samples = _from_shards(source, config)
        name = source.name
    else:
        if actions is not None and config.idm is not None:
            raise IngestError("pass --actions (the keys logged) or --label-with (an IDM proposes them), not both")
        given_log = read_action_log(actions) if actions is not None else None  # checked before any decoding
        recording = _open(source, config.limits)
        if given_log is None and recording.log_bytes is None and config.idm is not None:
            samples = _from_unlogged(recording, config, progress)
            review = KeyReview(config.target_fps)
        else:
            log = given_log or _embedded_log(recording)
            source_fps = _source_fps(recording, log, config)
            samples = _from_recording(recording, log, source_fps, config, progress)
        name = recording.name
    with staged_folder(out, exists_message=_EXISTS.format(out=out)) as stage:
        report = _write(samples, stage, config, review)
        report.update(source=name, target_fps=config.target_fps)
        if review is not None:
            review.write(stage, Path(config.idm).name)
            report["review"] = {"keys": PROPOSED_KEYS, "picture": REVIEW_PICTURE}
        (stage / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


_EXISTS = "{out} already exists and is not an empty folder; ingest never overwrites stored data: choose a new --out"


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(_EXISTS.format(out=out))


def _is_shards(source: Path) -> bool:
    return source.suffix == ".tar" or (source.is_dir() and any(source.glob("*.tar")))


def _open(source: Path, limits: Limits) -> FrameSource:
    if source.is_dir():
        return open_png_folder(source, limits)
    suffix = source.suffix.lower()
    if suffix == ".zip":
        return open_png_zip(source, limits)
    if suffix in VIDEO_SUFFIXES:
        return open_video(source, limits)
    raise IngestError(
        f"{source.name}: unsupported input type {suffix or '(no suffix)'!r}; give a video "
        f"({', '.join(VIDEO_SUFFIXES)}), a folder or .zip of PNG frames, or .tar shards"
    )


def _embedded_log(recording: FrameSource) -> ActionLog:
    if recording.log_bytes is not None:
        return parse_action_log(recording.log_bytes, recording.log_name)
    raise IngestError(
        f"{recording.name}: no action log; pass --actions FILE (CSV 'frame,keys' or JSON, one entry "
        "per frame), or --label-with IDM_DIR to have an inverse-dynamics model propose the keys (one from "
        "`pocketworld idm train`, best trained on some of your own logged play)"
    )


def _source_fps(recording: FrameSource, log: ActionLog, config: IngestConfig) -> float:
    if config.fps is not None:
        return config.fps
    if log.fps and recording.fps and abs(log.fps - recording.fps) > 0.01 * recording.fps:
        raise IngestError(
            f"{log.source} says {log.fps:g} FPS but {recording.name} is {recording.fps:g} FPS; "
            "pass --fps to say which is right"
        )
    if recording.fps:
        return check_fps(
            recording.fps, f"{recording.name}: its declared frame rate", "; pass --fps to give the right one"
        )
    return log.fps or 30.0


def _from_recording(
    recording: FrameSource, log: ActionLog, source_fps: float, config: IngestConfig, progress: bool
) -> Iterator[Sample]:
    """Samples of a recording checked frame by frame against its log."""
    count = len(log.actions)
    use_timestamps = config.fps is None  # a given --fps overrides the container's clock
    bar = tqdm(total=count, unit="frame", desc=f"ingest {recording.name}", disable=not progress)

    def timed_frames():
        previous, decoded = None, 0
        for index, (time, frame) in enumerate(recording.frames):
            if index >= count:
                raise LengthMismatchError(
                    f"{recording.name} has more frames than {log.source} has entries ({count}): "
                    f"frame {index} has no action"
                )
            time = time if use_timestamps and time is not None else index / source_fps
            if previous is not None and time <= previous:
                raise IngestError(
                    f"{recording.name} frame {index}: timestamp {time:.3f}s is not after the previous "
                    f"frame's {previous:.3f}s; pass --fps to ignore the file's timestamps"
                )
            previous, decoded = time, index + 1
            bar.update()
            yield time, frame
        bar.close()
        if decoded == 0:
            raise LengthMismatchError(f"{recording.name} holds no frames (an empty video?)")
        if decoded < count:
            raise LengthMismatchError(
                f"{recording.name} has {decoded} frames but {log.source} has {count} entries; "
                "they must match one to one"
            )

    aligned = _align(_resample(timed_frames(), source_fps, config, recording.name), log.actions)
    yield from _recording_samples(aligned, recording, source_fps, config, {"pseudo_labelled": False})


def _from_unlogged(recording: FrameSource, config: IngestConfig, progress: bool) -> Iterator[Sample]:
    """Samples of a recording with no key log, its keys proposed by the IDM at config.idm: the key of frame t is
    what the IDM reads from frames t -> t+1 at 30 FPS (the last frame's is NOOP, the shard format's pad). The
    samples say they are pseudo-labelled, and which IDM labelled them."""
    from core.evaluation.idm import load_idm

    idm, _ = load_idm(config.idm)  # safetensors + a bounded config.json, as every model we load
    source_fps = config.fps or (
        check_fps(recording.fps, f"{recording.name}: its declared frame rate", "; pass --fps to give the right one")
        if recording.fps
        else 30.0
    )
    bar = tqdm(unit="frame", desc=f"ingest {recording.name}, keys by the IDM", disable=not progress)

    def timed_frames():
        decoded = 0
        for index, (time, frame) in enumerate(recording.frames):
            decoded = index + 1
            bar.update()
            yield (time if config.fps is None and time is not None else index / source_fps), frame
        bar.close()
        if decoded == 0:
            raise LengthMismatchError(f"{recording.name} holds no frames (an empty video?)")

    shown = (letterbox(frame) for _, frame in _resample(timed_frames(), source_fps, config, recording.name))
    labelled = {"pseudo_labelled": True, "labelled_by": str(config.idm)}
    yield from _recording_samples(_idm_keys(shown, idm), recording, source_fps, config, labelled)


def _idm_keys(frames: Iterator[np.ndarray], idm, batch: int = 64) -> Iterator[tuple[np.ndarray, int]]:
    """(frame, the key the IDM reads from it to the next frame) per frame, in batches of `batch` transitions."""
    window = []
    for frame in frames:
        window.append(frame)
        if len(window) == batch + 1:
            yield from zip(window[:-1], idm.predict(np.stack(window[:-1]), np.stack(window[1:]))[0].tolist())
            window = window[-1:]
    if len(window) > 1:
        yield from zip(window[:-1], idm.predict(np.stack(window[:-1]), np.stack(window[1:]))[0].tolist())
    if window:
        yield window[-1], vocab.NOOP


def _recording_samples(
    aligned: Iterator, recording: FrameSource, source_fps: float, config: IngestConfig, labels: dict
) -> Iterator[Sample]:
    """(frame, action) pairs of one recording -> its samples, `config.chunk` frames each, split by config.split."""
    meta = {
        "game": config.game or Path(recording.name).stem,
        "seed": 0,
        "agent": "human",
        "source": recording.name,
        "source_fps": source_fps,
        **labels,
    }
    held_out = False
    for index, (start, frames, actions, last) in enumerate(_chunks(aligned, config.chunk)):
        # every val_every-th chunk is held out; a short recording holds out its last chunk
        val = (index + 1) % config.val_every == 0 or (last and index > 0 and not held_out)
        held_out |= val
        split = ("val" if val else "train") if config.split == "auto" else config.split
        yield _sample(frames, actions, dict(meta, split=split, start_frame=start), last, config)


def _from_shards(source: Path, config: IngestConfig) -> Iterator[Sample]:
    """Samples of our own shards, resampled to the target rate; each keeps its game, seed, agent and split."""
    for sample in read_shards_strict(source, config.limits):
        fps = float(sample.meta["fps"])
        timed = ((index / fps, frame) for index, frame in enumerate(sample.frames))
        aligned = _align(_resample(timed, fps, config, source.name), sample.actions)
        first = round(sample.meta.get("start_frame", 0) * config.target_fps / fps)
        meta = {
            "game": config.game or sample.meta["game"],
            "seed": sample.meta.get("seed", 0),
            "agent": sample.meta.get("agent", "unknown"),
            "source": source.name,
            "source_fps": fps,
            "pseudo_labelled": bool(sample.meta.get("pseudo_labelled", False)),
            "split": sample.meta.get("split", "train") if config.split == "auto" else config.split,
        }
        for start, frames, actions, last in _chunks(aligned, config.chunk):
            ends = last and bool(sample.meta.get("ends_episode", True))
            yield _sample(frames, actions, dict(meta, start_frame=first + start), ends, config)


def _resample(timed: Iterator, source_fps: float, config: IngestConfig, name: str) -> Iterator[tuple[int, np.ndarray]]:
    """(source index, frame) shown at each output time k / target_fps: the latest frame at or before it.
    The output is held to the length limit too: timestamps far apart would otherwise repeat a frame without end."""
    step, k, index, frame, start = 1.0 / config.target_fps, 0, -1, None, None

    def shown(index: int, frame: np.ndarray):
        if k >= config.limits.max_frames:
            raise LimitError(
                f"{name} lasts longer than {config.limits.max_frames} frames at {config.target_fps} FPS "
                "(the length limit); check its timestamps, or pass --fps to ignore them"
            )
        return index, frame

    for index, (time, frame_next) in enumerate(timed):
        start = time if start is None else start
        while frame is not None and k * step < time - start - TIME_TOLERANCE:
            yield shown(index - 1, frame)
            k += 1
        frame, last_time = frame_next, time
    if frame is not None:  # the last frame lasts one source frame interval
        while k * step < last_time - start + 1.0 / source_fps - TIME_TOLERANCE or k == 0:
            yield shown(index, frame)
            k += 1


def _align(shown: Iterator, actions: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """(letterboxed frame, action) per output frame. The action is the one held longest over the
    recorded frames this output frame stands for, so it needs the next output's index: lags one."""
    previous = None
    for index, frame in shown:
        if previous is not None:
            yield letterbox(previous[1]), _span_action(actions, previous[0], index)
        previous = index, frame
    if previous is not None:
        yield letterbox(previous[1]), _span_action(actions, previous[0], len(actions))


def _span_action(actions: np.ndarray, start: int, stop: int) -> int:
    # a repeated frame (upsampling) covers no recorded step of its own: the key was held through it
    span = actions[start : max(stop, start + 1)]
    counts = np.bincount(span, minlength=vocab.NUM_ACTIONS)
    if counts.sum() > counts[vocab.NOOP]:
        counts[vocab.NOOP] = 0  # any press beats NOOP, so a short tap survives downsampling
    tied = np.flatnonzero(counts == counts.max())
    return int(next(a for a in span if a in tied))  # among ties, the one pressed first


def _chunks(aligned: Iterator, size: int) -> Iterator[tuple[int, list, list, bool]]:
    """(start, frames, actions, is_last) runs of `size` frames; lags one frame to know which is last."""
    frames, actions, start = [], [], 0
    for frame, action in aligned:
        if len(frames) == size:
            yield start, frames, actions, False
            start, frames, actions = start + size, [], []
        frames.append(frame)
        actions.append(action)
    if frames:
        yield start, frames, actions, True


def _sample(frames: list, actions: list, meta: dict, ends: bool, config: IngestConfig) -> Sample:
    actions = np.asarray(actions, dtype=np.uint8)
    if ends:
        actions[-1] = vocab.NOOP  # the shard format's pad: the last action of an episode leads nowhere
    meta = dict(
        meta, fps=config.target_fps, version=DATA_VERSION, num_frames=len(frames), ends_episode=ends, state_layout={}
    )
    return Sample(np.stack(frames), actions, np.zeros((len(frames), 0), np.float32), meta)


def _write(samples: Iterator[Sample], stage: Path, config: IngestConfig, review: KeyReview | None = None) -> dict:
    writer = ShardWriter(stage, max_bytes=config.shard_mb * 2**20)
    frames, splits, histogram, games = 0, {}, np.zeros(vocab.NUM_ACTIONS, np.int64), set()
    pseudo = False
    for sample in samples:
        pseudo |= bool(sample.meta.get("pseudo_labelled"))
        writer.write(sample)
        if review is not None:
            review.add(sample.frames, sample.actions)
        frames += len(sample.frames)
        splits[sample.meta["split"]] = splits.get(sample.meta["split"], 0) + len(sample.frames)
        histogram += np.bincount(sample.actions, minlength=vocab.NUM_ACTIONS)
        games.add(sample.meta["game"])
    writer.close()
    if frames < config.min_frames:
        raise LengthMismatchError(
            f"the recording gives {frames} frames at {config.target_fps} FPS; at least "
            f"{config.min_frames} are needed to make one training clip"
        )
    return {
        "frames": frames,
        "seconds": round(frames / config.target_fps, 2),
        "games": sorted(games),
        "split_frames": splits,
        "shards": writer.index,
        "action_counts": {vocab.ACTIONS[i]: int(n) for i, n in enumerate(histogram) if n},
        "pseudo_labelled": pseudo,
    }
