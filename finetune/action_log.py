"""Action logs of user gameplay: which keys were held at each recorded frame.

Two formats, both one entry per recorded frame, frames numbered from 0 with none missing:

    CSV   a header `frame,keys`, then one row per frame: `0,LEFT+FIRE`, `1,ArrowLeft+z`,
          `2,` (nothing pressed). Keys are joined by '+'; an action name or id works too.
    JSON  a list with one entry per frame (`["LEFT", "LEFT+FIRE", ["ArrowUp", "z"], 0, ...]`),
          a list of `{"frame": 0, "keys": "LEFT"}` objects, or an object
          `{"fps": 60, "actions": [...]}` that also says the frame rate the log was recorded at.

Keys mean what core.actions says they mean, so a log means the same thing in the app, the
recorders and here. Every problem is an ActionLogError naming the line (CSV) or entry (JSON).
`format_action_log` writes either format (`pocketworld record` exports play with it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import actions as vocab
from finetune.errors import ActionLogError, IngestError, LimitError
from finetune.sources import check_fps


@dataclass
class ActionLog:
    actions: np.ndarray  # (N,) uint8 action ids, one per recorded frame
    fps: float | None  # the frame rate the log declares, if it declares one
    source: str  # file name, for messages and shard metadata


def read_action_log(path: str | Path, max_bytes: int = 64 * 2**20) -> ActionLog:
    """Parse a CSV or JSON action log (chosen by its suffix) into action ids, or raise ActionLogError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"action log {path} not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise LimitError(f"action log {path.name} is {size} bytes, over the {max_bytes}-byte limit")
    return parse_action_log(path.read_bytes(), path.name)


def parse_action_log(data: bytes, name: str) -> ActionLog:
    """Parse the bytes of a log called `name` (its suffix picks CSV or JSON)."""
    try:
        text = data.decode("utf-8-sig")  # spreadsheets often save a BOM
    except UnicodeDecodeError as err:
        raise ActionLogError(f"{name}: not UTF-8 text (byte {err.start}); is this really an action log?") from None
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return ActionLog(_parse_csv(text, name), None, name)
    if suffix == ".json":
        return _parse_json(text, name)
    raise ActionLogError(
        f"{name}: unknown action log type {suffix or '(no suffix)'!r}; use a .csv (frame,keys) or .json log"
    )


def format_action_log(actions, name: str, fps: float | None = None) -> str:
    """The text of a log called `name` (.csv or .json by its suffix) holding action ids `actions`, one per
    frame: what parse_action_log reads back. Keys are button names joined by '+' ('LEFT+FIRE', '' for none);
    a JSON log also states `fps` when given (a CSV log has no place for it)."""
    order = ("UP", "DOWN", "LEFT", "RIGHT", "FIRE")
    keys = ["+".join(b for b in order if b in vocab.to_buttons(int(a))) for a in actions]
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return "frame,keys\n" + "".join(f"{index},{entry}\n" for index, entry in enumerate(keys))
    if suffix == ".json":
        return json.dumps({"fps": fps, "actions": keys} if fps is not None else keys) + "\n"
    raise ActionLogError(f"{name}: an action log is written as .csv (frame,keys) or .json")


def _parse_csv(text: str, name: str) -> np.ndarray:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ActionLogError(f"{name}: empty action log; expected a header 'frame,keys' and one row per frame")
    header = [cell.strip().lower() for cell in rows[0]]
    if header != ["frame", "keys"]:
        raise ActionLogError(f"{name} line 1: expected the header 'frame,keys', got {','.join(rows[0])!r}")
    actions = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines (a trailing newline in an editor) carry nothing
        if len(row) != 2:
            raise ActionLogError(f"{name} line {line}: expected 2 columns (frame,keys), got {len(row)}: {row}")
        frame_text, keys = row
        try:
            frame = int(frame_text)
        except ValueError:
            raise ActionLogError(f"{name} line {line}: frame {frame_text!r} is not a whole number") from None
        _check_frame_index(frame, len(actions), f"{name} line {line}")
        actions.append(_action(keys, f"{name} line {line}"))
    return _finish(actions, name)


def _parse_json(text: str, name: str) -> ActionLog:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ActionLogError(f"{name} line {err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:  # json's parser on arrays nested thousands deep
        raise ActionLogError(
            f"{name}: nested too deeply; a log is a list of actions (or an object holding one)"
        ) from None
    fps = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"fps", "actions"})
        if unknown or "actions" not in data:
            raise ActionLogError(
                f"{name}: a JSON object log needs an 'actions' list (and optionally 'fps'); unexpected keys {unknown}"
                if unknown
                else f"{name}: the object has no 'actions' list"
            )
        fps = data.get("fps")
        if fps is not None:
            try:
                fps = check_fps(fps, f"{name}: 'fps'")
            except IngestError as err:
                raise ActionLogError(str(err)) from None
        data = data["actions"]
    if not isinstance(data, list):
        raise ActionLogError(f"{name}: expected a list of actions (one per frame), got a JSON {type(data).__name__}")
    actions = []
    for index, entry in enumerate(data):
        where = f"{name} entry {index}"
        if isinstance(entry, dict):
            if set(entry) != {"frame", "keys"}:
                raise ActionLogError(f"{where}: expected {{'frame': N, 'keys': ...}}, got keys {sorted(entry)}")
            frame = entry["frame"]
            if isinstance(frame, bool) or not isinstance(frame, int):
                raise ActionLogError(f"{where}: 'frame' must be a whole number, got {frame!r}")
            _check_frame_index(frame, len(actions), where)
            entry = entry["keys"]
        actions.append(_action(entry, where))
    return ActionLog(_finish(actions, name), fps, name)


def _check_frame_index(frame: int, expected: int, where: str) -> None:
    if frame != expected:
        problem = "repeats" if frame < expected else "skips to"
        raise ActionLogError(
            f"{where}: {problem} frame {frame} where frame {expected} was expected; the log needs "
            "exactly one entry per frame, numbered from 0"
        )


def _action(entry, where: str) -> int:
    """One log entry (keys joined by '+', a list of keys, an action name or id) -> action id."""
    try:
        if isinstance(entry, str):
            return vocab.parse(entry) if entry.strip() else vocab.NOOP
        if isinstance(entry, list) and all(isinstance(key, str) for key in entry):
            return vocab.from_keys(entry)
        if isinstance(entry, int) and not isinstance(entry, bool):
            return vocab.validate(entry)
    except ValueError as err:
        raise ActionLogError(f"{where}: {err}") from None
    raise ActionLogError(
        f"{where}: expected keys as a string ('LEFT+FIRE'), a list of key names or an action id, "
        f"got {type(entry).__name__} {entry!r}"
    )


def _finish(actions: list[int], name: str) -> np.ndarray:
    if not actions:
        raise ActionLogError(f"{name}: the action log has no frames")
    return np.asarray(actions, dtype=np.uint8)
