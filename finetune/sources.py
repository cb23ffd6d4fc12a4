"""Readers for the three kinds of user gameplay: a video, PNG frames (folder or zip), our shards.

Each reader checks what it can before decoding anything (file size, container, zip entries) and
then yields frames one at a time, so an hour of video never sits in memory. A frame that does
not decode is a CorruptInputError naming it. Video goes through PyAV (ffmpeg inside its wheel);
zip archives are read member by member in memory, never extracted, after every path has been
checked not to escape the archive (the "zip slip" of CVE-2018-1002200) and the declared
expansion has been checked against the limit (zip bombs).
"""

from __future__ import annotations

import io
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from core import actions as vocab
from core.data.encoding import frame_count
from core.data.shards import Sample, decode_sample, list_shards, shard_is_complete
from finetune.errors import CorruptInputError, IngestError, LengthMismatchError, LimitError, UnsafeArchiveError

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mkv", ".mov", ".avi")
LOG_NAMES = ("actions.csv", "actions.json")  # an action log found beside the frames is used by default
MAX_ZIP_RATIO = 200  # a PNG barely compresses further; a member expanding 200x is a bomb, not a frame


@dataclass
class Limits:
    max_input_bytes: int = 4 * 2**30  # a video, zip or folder of frames larger than this is refused
    max_unpacked_bytes: int = 8 * 2**30  # a zip may declare at most this much content in all
    max_files: int = 200_000  # at most this many files in a zip or frames folder
    max_frames: int = 108_000  # recorded frames at most (an hour at 30 FPS)
    max_side: int = 4096  # frame width and height at most, in pixels
    max_member_bytes: int = 256 * 2**20  # one file inside a shard at most (a shard is ~256 MB in all)
    max_sample_frames: int = 1024  # frames in one shard sample (collect and ingest write 128)

    def __post_init__(self):
        if (
            min(
                self.max_input_bytes,
                self.max_unpacked_bytes,
                self.max_files,
                self.max_frames,
                self.max_side,
                self.max_member_bytes,
                self.max_sample_frames,
            )
            <= 0
        ):
            raise ValueError("every ingest limit must be positive")


FPS_RANGE = (1.0, 240.0)  # a recording's frame rate: resampling to 30 FPS repeats a frame at most 30 times


def check_fps(fps, where: str, hint: str = "") -> float:
    """`fps` as a float when it is a number in FPS_RANGE, else an IngestError naming `where`.
    Every frame rate that enters ingest passes here: 0.001 FPS would write 30,000 frames per frame."""
    low, high = FPS_RANGE
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not low <= fps <= high:  # NaN fails too
        raise IngestError(f"{where} must be a number from {low:g} to {high:g} (frames per second), got {fps!r}{hint}")
    return float(fps)


@dataclass
class FrameSource:
    """Frames of one recording, decoded lazily: iterate for (time in seconds or None, (H, W, 3) uint8)."""

    name: str  # the file or folder, for messages and shard metadata
    fps: float | None  # the frame rate the container declares (None for PNG frames)
    frames: Iterator  # yields (time, frame)
    log_bytes: bytes | None = None  # an action log found inside a folder or zip
    log_name: str | None = None


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count} bytes"


def _check_size(path: Path, limits: Limits) -> None:
    size = path.stat().st_size
    if size == 0:
        raise CorruptInputError(f"{path.name} is empty (0 bytes)")
    if size > limits.max_input_bytes:
        raise LimitError(
            f"{path.name} is {_size(size)}, over the {_size(limits.max_input_bytes)} "
            "input limit; trim the recording or raise the limit"
        )


def _check_frame(frame: np.ndarray, index: int, name: str, limits: Limits, shape: tuple | None) -> tuple:
    """Frames of one recording must all have one size, within the resolution limit."""
    height, width = frame.shape[:2]
    if max(height, width) > limits.max_side:
        raise LimitError(f"{name} frame {index} is {width}x{height}, over the {limits.max_side}-pixel limit per side")
    if shape is not None and frame.shape != shape:
        raise IngestError(
            f"{name} frame {index} is {width}x{height} but frame 0 is {shape[1]}x{shape[0]}; all frames "
            "of a recording must have one size"
        )
    if index >= limits.max_frames:
        raise LimitError(f"{name} has more than {limits.max_frames} frames (the length limit); split the recording")
    return frame.shape


# -- video ---------------------------------------------------------------------------------
def open_video(path: Path, limits: Limits) -> FrameSource:
    import av

    _check_size(path, limits)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise CorruptInputError(
            f"{path.name}: not a readable video (corrupt, truncated or not a {path.suffix} file): {err}"
        ) from None
    if not container.streams.video:
        container.close()
        raise IngestError(f"{path.name} has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    declared = stream.frames or None  # 0 when the container does not say (webm)
    if declared and declared > limits.max_frames:
        container.close()
        raise LimitError(f"{path.name} has {declared} frames, over the {limits.max_frames}-frame length limit")
    return FrameSource(
        path.name, float(rate) if rate else None, _decode_video(container, stream, path.name, declared, limits)
    )


def _decode_video(container, stream, name: str, declared: int | None, limits: Limits):
    import av

    index, shape = 0, None
    with container:
        try:
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                shape = _check_frame(image, index, name, limits, shape)
                yield frame.time, image
                index += 1
        except (av.FFmpegError, OSError) as err:
            raise CorruptInputError(f"{name}: video data is corrupt or truncated after frame {index}: {err}") from None
    # a truncated file with its index intact decodes quietly; the declared count gives it away
    if declared and index < declared:
        raise CorruptInputError(
            f"{name}: the video declares {declared} frames but only {index} decode; the file looks truncated"
        )


# -- PNG frames ----------------------------------------------------------------------------
def _natural_key(name: str):
    """frame_2.png sorts before frame_10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _decode_png(data: bytes, index: int, name: str, limits: Limits) -> np.ndarray:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        if image.format != "PNG":
            raise IngestError(f"frame {index} ({name}) is a {image.format} image; frames must be PNG")
        if max(image.size) > limits.max_side:
            raise LimitError(
                f"frame {index} ({name}) is {image.width}x{image.height}, over the "
                f"{limits.max_side}-pixel limit per side"
            )
        return np.asarray(image.convert("RGB"))
    except IngestError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptInputError(f"frame {index} ({name}) is not a readable PNG (corrupt or truncated): {err}") from None


def _png_frames(members: list[str], read, label: str, limits: Limits):
    shape = None
    for index, member in enumerate(members):
        frame = _decode_png(read(member), index, f"{label}/{member}", limits)
        shape = _check_frame(frame, index, label, limits, shape)
        yield None, frame


def _split_members(names: list[str], label: str, limits: Limits) -> tuple[list[str], str | None]:
    """PNG frames (natural order) and the action log among the files of a folder or zip."""
    frames, log = [], None
    for name in names:
        base = PurePosixPath(name).name
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue  # file-manager litter (.DS_Store, macOS resource forks)
        if base.lower() in LOG_NAMES:
            if log is not None:
                raise IngestError(f"{label} holds two action logs ({log} and {name}); keep one")
            log = name
        elif base.lower().endswith(".png"):
            frames.append(name)
        else:
            raise IngestError(
                f"{label} holds {name!r}, which is neither a PNG frame nor an action log "
                f"({' or '.join(LOG_NAMES)}); remove it"
            )
    if not frames:
        raise LengthMismatchError(f"{label} holds no PNG frames")
    if len(frames) > limits.max_frames:
        raise LimitError(f"{label} holds {len(frames)} frames, over the {limits.max_frames}-frame length limit")
    return sorted(frames, key=_natural_key), log


def open_png_folder(path: Path, limits: Limits) -> FrameSource:
    files = [p for p in sorted(path.rglob("*")) if p.is_file()]
    if len(files) > limits.max_files:
        raise LimitError(f"{path.name} holds {len(files)} files, over the {limits.max_files}-file limit")
    total = sum(p.stat().st_size for p in files)
    if total > limits.max_input_bytes:
        raise LimitError(f"{path.name} holds {_size(total)}, over the {_size(limits.max_input_bytes)} input limit")
    names = [p.relative_to(path).as_posix() for p in files]
    frames, log = _split_members(names, path.name, limits)
    return FrameSource(
        path.name,
        None,
        _png_frames(frames, lambda m: (path / m).read_bytes(), path.name, limits),
        (path / log).read_bytes() if log else None,
        log,
    )


def open_png_zip(path: Path, limits: Limits) -> FrameSource:
    _check_size(path, limits)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise CorruptInputError(f"{path.name}: not a readable zip archive (corrupt or truncated): {err}") from None
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > limits.max_files:
        raise LimitError(f"{path.name} holds {len(members)} files, over the {limits.max_files}-file limit")
    total = 0
    for info in members:
        _check_member(info, path.name)
        total += info.file_size
        if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1) and info.file_size > 2**20:
            raise UnsafeArchiveError(
                f"{path.name}: {info.filename!r} expands {info.file_size // max(info.compress_size, 1)}x "
                "(a zip bomb?); PNG frames do not compress like that"
            )
    if total > limits.max_unpacked_bytes:
        raise UnsafeArchiveError(
            f"{path.name} expands to {_size(total)}, over the {_size(limits.max_unpacked_bytes)} limit"
        )
    frames, log = _split_members([info.filename for info in members], path.name, limits)

    def read(member: str) -> bytes:
        # zipfile stops at the declared size and checks the CRC, so a lying header cannot inflate this
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CorruptInputError(f"{path.name}: member {member!r} is corrupt or truncated: {err}") from None

    return FrameSource(path.name, None, _png_frames(frames, read, path.name, limits), read(log) if log else None, log)


def _check_member(info: zipfile.ZipInfo, label: str) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or "\\" in name:
        raise UnsafeArchiveError(f"{label}: member {name!r} has a path that escapes the archive's folder; refusing it")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchiveError(f"{label}: member {name!r} is a symbolic link; frames must be plain files")


# -- our own shards ------------------------------------------------------------------------
def read_shards_strict(path: Path, limits: Limits) -> Iterator[Sample]:
    """Samples of our shards; unlike training's reader, a truncated or corrupt shard is an error.

    A shard's files are read (not decoded) first, each member's declared size checked before it is
    read: a sparse member lets a 30 KB tar declare gigabytes. Every sample's frame count is then read
    from its PNG header and held to the limits before any sample is decoded; samples are decoded one at
    a time as they are yielded (ingest writes into a staging folder, so a later error leaves nothing)."""
    frames = 0
    for shard in list_shards(path):
        _check_size(shard, limits)
        if not shard_is_complete(shard):
            raise CorruptInputError(f"shard {shard.name} is truncated (it does not end like a complete tar)")
        samples = []  # (key, {extension: bytes}) of one shard, undecoded
        try:
            with tarfile.open(shard, "r") as tar:
                files, key, stored = {}, None, shard.stat().st_size
                for member in tar:
                    if not member.isfile():
                        continue
                    _check_tar_member(member, shard.name, limits)
                    stored -= member.size  # what a plain tar holds is inside the file; only sparse data is not
                    if stored < 0:
                        raise UnsafeArchiveError(
                            f"shard {shard.name}: its members declare more bytes than the "
                            "file holds (sparse or forged sizes); refusing it"
                        )
                    member_key, _, ext = PurePosixPath(member.name).name.partition(".")
                    if member_key != key and files:
                        samples.append((key, files))
                        files = {}
                    key = member_key
                    files[ext] = tar.extractfile(member).read()
                if files:
                    samples.append((key, files))
        except (tarfile.TarError, EOFError, OSError) as err:
            raise CorruptInputError(f"shard {shard.name} is corrupt: {err}") from None
        for key, files in samples:
            frames += _sample_frames(files, key, shard.name, limits)
            if frames > limits.max_frames:
                raise LimitError(f"{path} holds more than {limits.max_frames} frames (the length limit)")
        for key, files in samples:
            yield _checked_sample(files, key, shard.name)


def _check_tar_member(member: tarfile.TarInfo, shard: str, limits: Limits) -> None:
    if member.issparse():
        raise UnsafeArchiveError(f"shard {shard}: member {member.name!r} is a sparse file; shards hold plain files")
    if member.size > limits.max_member_bytes:
        raise LimitError(
            f"shard {shard}: member {member.name!r} is {_size(member.size)}, over the "
            f"{_size(limits.max_member_bytes)} limit for one file in a shard"
        )


def _sample_frames(files: dict, key: str, shard: str, limits: Limits) -> int:
    """The frames a sample holds, from its PNG header alone."""
    if "frames.png" not in files:
        raise CorruptInputError(f"shard {shard} sample {key!r}: sample lacks frames.png")
    try:
        count = frame_count(files["frames.png"])
    except (ValueError, OSError, SyntaxError) as err:
        raise CorruptInputError(f"shard {shard} sample {key!r}: {err}") from None
    if count > limits.max_sample_frames:
        raise LimitError(
            f"shard {shard} sample {key!r} holds {count} frames in one image (256x{count * 256}), over "
            f"the {limits.max_sample_frames}-frame limit per sample"
        )
    return count


def _checked_sample(files: dict, key: str, shard: str) -> Sample:
    try:
        sample = decode_sample(files)
    except RecursionError:  # json's parser on a meta.json nested thousands deep
        raise CorruptInputError(f"shard {shard} sample {key!r}: meta.json is nested too deeply to be ours") from None
    except (ValueError, KeyError, OSError, SyntaxError) as err:
        raise CorruptInputError(f"shard {shard} sample {key!r}: {err}") from None
    actions = sample.actions
    if (
        actions.ndim != 1
        or actions.dtype.kind not in "iu"
        or (len(actions) and (actions.min() < 0 or actions.max() >= vocab.NUM_ACTIONS))
    ):
        raise IngestError(
            f"shard {shard} sample {key!r}: actions must be whole action ids 0..{vocab.NUM_ACTIONS - 1}, "
            f"got a {actions.ndim}-d {actions.dtype} array"
        )
    if not isinstance(sample.meta, dict) or not {"game", "fps"} <= set(sample.meta):
        raise IngestError(f"shard {shard} sample {key!r}: meta.json lacks 'game' or 'fps'")
    check_fps(sample.meta["fps"], f"shard {shard} sample {key!r}: meta.json's 'fps'")
    return sample
