"""What the "Real or dream?" tab does: deal a pair of clips in random order, score a vote, show the tally.

`app.py` wires these to Gradio events. The round id lives in the visitor's `gr.State`; the clips
go to the page as inline GIF data, so neither a file name nor a URL tells which one is real.
Levels come from the test split (seeds no model trained on) so a dream cannot be a memory.
Errors a visitor can cause come back as messages for the page, never as exceptions.

A few levels' pairs are cached and reused, and the answer is shown after each vote, so a script
could learn each clip's answer and then stuff the tally. Against that: each round's GIFs are
re-coloured by a random step of at most one level per colour (`jitter_palettes`), so neither the
bytes nor the decoded pixels repeat; the message after a vote names no level; and votes are
rate-limited per session (at most `votes_per_session` a window, none sooner than the clip plays).
"""

from __future__ import annotations

import base64
import os
import random
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from core import zoo
from core.data.shards import split_of
from core.games import GAMES
from core.play.benchmarks import model_folder
from core.play.dream_pairs import ClipConfig, clip_pair
from core.play.models import ModelCache
from core.play.votes import SIDES, VoteError, VoteStore
from core.world_model import WEIGHTS_FILE

INTRO = (
    "Two clips of the same level, played with the same keys from the same first frame: one is the real game, "
    "the other was dreamed by the world model. Which one is real?"
)


def data_dir() -> Path:
    """Where the app keeps what it writes: POCKETWORLD_DATA, else ~/.cache/pocketworld (beside the local registry)."""
    return Path(os.environ.get("POCKETWORLD_DATA") or Path.home() / ".cache" / "pocketworld")


@dataclass
class RealOrDreamConfig:
    votes_path: Path | None = None  # the SQLite file of votes (None: <data dir>/real_or_dream/votes.sqlite)
    clips_dir: Path | None = None  # cached clip pairs (None: <data dir>/real_or_dream/clips)
    levels_per_game: int = 8  # test-split level seeds dealt per game: few pairs, each judged often
    clip: ClipConfig = field(default_factory=ClipConfig)
    votes_per_session: int = 30  # votes one session may cast per vote_window_s (a script stuffing the tally)
    vote_window_s: float = 600.0  # the rate limit's window, in seconds
    min_watch_s: float | None = None  # a vote this soon after its pair was dealt is refused (None: the clip's length)


def held_out_levels(count: int) -> list[int]:
    """The first `count` level seeds of the test split (core.data.shards.split_of)."""
    seeds, seed = [], 0
    while len(seeds) < count:
        if split_of(seed) == "test":
            seeds.append(seed)
        seed += 1
    return seeds


class RealOrDream:
    """The tab's actions, shared by all visitors (each passes the round id from their own session)."""

    def __init__(
        self,
        models: ModelCache,
        config: RealOrDreamConfig | None = None,
        registry=None,
        rng: random.Random | None = None,
    ):
        self.config = config or RealOrDreamConfig()
        self.models = models
        self.registry = registry
        home = data_dir() / "real_or_dream"
        self.votes_path = Path(self.config.votes_path or home / "votes.sqlite")
        self.clips_dir = Path(self.config.clips_dir or home / "clips")
        self.rng = rng or random.SystemRandom()  # the side of the real clip must not be guessable
        self.levels = held_out_levels(self.config.levels_per_game)
        clip = self.config.clip
        self.min_watch_s = (
            (clip.steps + 1) * clip.frame_ms / 1000 if self.config.min_watch_s is None else self.config.min_watch_s
        )
        self._votes_by_session: dict[str, deque] = {}  # session -> times of its recent votes
        self._votes_lock = threading.Lock()

    @cached_property
    def store(self) -> VoteStore:
        """Opened (and the file created) on first use, so building the app writes nothing."""
        return VoteStore(self.votes_path)

    def new_pair(self, model: str, game: str) -> tuple[str | None, str, str]:
        """Deal a pair: (round id or None, clips html, message)."""
        if game not in GAMES:
            return None, "", f"Cannot deal a pair: unknown game {game!r}; choose one of {', '.join(GAMES)}."
        try:
            loaded = self.models.get(model)
        except (zoo.WeightsNotAvailable, ValueError) as err:
            return None, "", f"Cannot deal a pair: {err}"
        seed = self.rng.choice(self.levels)
        try:
            pair = clip_pair(loaded, self._model_key(model), game, seed, self.clips_dir, self.config.clip)
        except OSError as err:  # a full or read-only disk under the clip cache
            return None, "", f"Cannot make the clips: {err}"
        real_side = self.rng.choice(SIDES)
        try:
            round_ = self.store.new_round(model, game, seed, real_side)
        except (sqlite3.Error, OSError) as err:
            return None, "", self._store_trouble(err)
        clips = {real_side: pair.real, _other(real_side): pair.dream}
        html = clips_html(*(jitter_palettes(clips[side].read_bytes(), self.rng) for side in SIDES))
        return round_.id, html, f"{game}, a test level. Which clip is the real game?"

    def vote(self, round_id: str | None, picked: str, session: str | None = None) -> tuple[str | None, str]:
        """Score a vote of `session` (Gradio's session hash): (the round still open, None once scored; a message
        saying what each clip was, but not which level: that would name the clip for next time)."""
        if not round_id:
            return None, "No pair to vote on yet: press 'New pair' first."
        try:
            dealt = self.store.get_round(round_id)
            too_soon = time.time() - dealt.created_at < self.min_watch_s
            if too_soon:
                return round_id, f"Watch both clips first: they play for {self.min_watch_s:g} s."
            wait_s = self._vote_allowed(session or "")
            if wait_s:
                return round_id, (
                    f"Too many votes from this session: at most {self.config.votes_per_session} in "
                    f"{self.config.vote_window_s / 60:g} minutes. Try again in {wait_s:.0f} s."
                )
            round_, fooled = self.store.vote(round_id, picked)
        except VoteError as err:
            return None, str(err)
        except (sqlite3.Error, OSError) as err:  # the vote is not lost from the page: the round stays
            return round_id, self._store_trouble(err)
        verdict = "Fooled! That one was dreamed by the model." if fooled else "Right, that one was the real game."
        return None, (
            f"You picked {picked}. {verdict} Real: {round_.real_side}, dream: {_other(round_.real_side)} "
            f"({round_.model}, {round_.game})."
        )

    def _vote_allowed(self, session: str) -> float:
        """0 when `session` may vote now (and the vote is counted against it), else the seconds until it may."""
        now = time.monotonic()
        with self._votes_lock:
            for key in [
                key for key, times in self._votes_by_session.items() if times[-1] <= now - self.config.vote_window_s
            ]:
                del self._votes_by_session[key]  # sessions quiet for a whole window are forgotten
            times = self._votes_by_session.setdefault(session, deque())
            while times and times[0] <= now - self.config.vote_window_s:
                times.popleft()
            if len(times) >= self.config.votes_per_session:
                return times[0] + self.config.vote_window_s - now
            times.append(now)
            return 0.0

    def scoreboard(self) -> str:
        """Markdown: how often the dream was called real, overall and per model and game, with counts."""
        try:
            tallies = self.store.tallies()
        except (sqlite3.Error, OSError) as err:
            return self._store_trouble(err)
        if not tallies[0].votes:
            return "No votes yet. 50% fooled would mean people cannot tell the dream from the game."
        lines = ["| model / game | votes | fooled | fooled rate (95% interval) |", "|---|---|---|---|"]
        for tally in tallies:
            low, high = tally.interval()
            lines.append(
                f"| {tally.label} | {tally.votes} | {tally.fooled} | {tally.rate:.0%} ({low:.0%}-{high:.0%}) |"
            )
        lines.append("\nFooled = the dream was called real; 50% means people cannot tell them apart.")
        return "\n".join(lines)

    def _store_trouble(self, err: Exception) -> str:
        return (
            f"The votes file {self.votes_path} cannot be used ({err}); set POCKETWORLD_DATA to a writable "
            "folder and restart the app."
        )

    def _model_key(self, model: str) -> str:
        """The model name plus its weights' size and time: new weights get new clips, not stale ones."""
        folder, _ = model_folder(model, self.registry)
        weights = (
            next((f for f in (folder / WEIGHTS_FILE, folder / "adapter_model.safetensors") if f.is_file()), None)
            if folder
            else None
        )
        if weights is None:
            return model
        stat = weights.stat()
        return f"{model}-{stat.st_size:x}-{stat.st_mtime_ns:x}"


def _other(side: str) -> str:
    return SIDES[1 - SIDES.index(side)]


def jitter_palettes(gif: bytes, rng: random.Random) -> bytes:
    """The GIF with every colour-table entry moved by -1, 0 or +1 per channel at random: the same clip
    to the eye, but other bytes and other pixels each time, so a cached clip cannot be recognised
    by its hash. Walks the GIF89a blocks; the image data is untouched."""
    data = bytes(gif)
    tables = []  # (start, end) of every colour table

    def table(at: int, packed: int) -> int:  # a colour table follows when the packed byte's top bit is set
        if not packed & 0x80:
            return at
        end = at + 3 * 2 ** ((packed & 7) + 1)
        tables.append((at, end))
        return end

    def skip_sub_blocks(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    at = table(13, data[10])  # after the header (6 bytes) and the logical screen descriptor (7)
    while at < len(data) and data[at] != 0x3B:  # 0x3B ends the file
        if data[at] == 0x21:  # an extension: label, then sub-blocks
            at = skip_sub_blocks(at + 2)
        elif data[at] == 0x2C:  # an image: descriptor (9 bytes), its own colour table, LZW code size, data
            at = skip_sub_blocks(table(at + 10, data[at + 9]) + 1)
        else:
            raise ValueError(f"not a GIF block at byte {at}")
    pixels = np.frombuffer(data, np.uint8).astype(np.int16)
    noise = np.random.default_rng(rng.getrandbits(64)).integers(-1, 2, len(pixels), dtype=np.int16)
    for start, end in tables:
        pixels[start:end] = np.clip(pixels[start:end] + noise[start:end], 0, 255)
    return pixels.astype(np.uint8).tobytes()


def clips_html(clip_a: Path | bytes, clip_b: Path | bytes) -> str:
    def figure(side: str, clip: Path | bytes) -> str:
        data = base64.b64encode(clip if isinstance(clip, bytes) else clip.read_bytes()).decode("ascii")
        return (
            f'<figure style="margin:0;text-align:center"><img src="data:image/gif;base64,{data}" '
            f'alt="clip {side}" style="width:256px;max-width:100%;image-rendering:pixelated">'
            f"<figcaption><b>{side}</b></figcaption></figure>"
        )

    return f'<div style="display:flex;gap:16px;flex-wrap:wrap">{figure("A", clip_a)}{figure("B", clip_b)}</div>'
