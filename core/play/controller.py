"""What each control of the play page does, as plain functions of the player's session.

`app.py` wires these to Gradio events; every error a player can cause (a model without
weights, a bad upload, an expired session, saving before playing) comes back as a message
for the page, never as an exception, so the page never shows a stack trace.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core import zoo
from core.games import GAMES, HELD_OUT, first_frame
from core.play.models import ModelCache, ModelChoice, all_choices
from core.play.page import LOOPS, frame_html, hud_line, message_html
from core.play.play_session import PlaySession, PlaySessionConfig, SessionExpired, parse_key_state
from core.play.recording import RecordingError
from core.play.stream import FrameStreams
from core.play.upload import StartImageError, UploadConfig, load_start_image

START_GAME, START_UPLOAD = "game level", "uploaded image"

WELCOME = (
    "Pick a model and a start, then press Start. Play with the arrow keys or WASD, "
    "Space or Z to fire, or the buttons below."
)


@dataclass
class PlayerConfig:
    session: PlaySessionConfig = field(default_factory=PlaySessionConfig)  # each browser tab's PlaySession
    upload: UploadConfig = field(default_factory=UploadConfig)
    recordings_dir: Path | None = None  # where GIF/MP4 downloads are written (None: a temporary folder)
    model_cache_size: int = 2  # models kept loaded, shared by all sessions
    loop: str = "websocket"  # how frames reach the page: websocket (core/play/stream.py) or timer
    step_concurrency: int | None = 1  # frames computed at once across all players (None: no limit)

    def __post_init__(self):
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {self.loop!r}")


class Player:
    """The play page's actions, shared by all browser sessions (each passes its own PlaySession)."""

    def __init__(self, config: PlayerConfig | None = None, registry=None):
        self.config = config or PlayerConfig()
        self.registry = registry
        self.models = ModelCache(registry, self.config.model_cache_size)
        self.recordings_dir = self.config.recordings_dir or Path(tempfile.mkdtemp(prefix="pocketworld-recordings-"))
        self._start_ids = itertools.count(1)
        # the stream's route is mounted by app.py once the server runs; with the timer loop there is none
        self.streams = (
            FrameStreams(self.step_frame, self.config.step_concurrency) if self.config.loop == "websocket" else None
        )

    def model_choices(self) -> list[tuple[str, str]]:
        return [(choice.label, choice.value) for choice in all_choices(self.registry)]

    def default_model(self) -> str | None:
        playable = [choice.value for choice in all_choices(self.registry) if choice.playable]
        return "nano" if "nano" in playable else (playable[0] if playable else "nano")

    def choice(self, value: str) -> ModelChoice | None:
        return next((c for c in all_choices(self.registry) if c.value == value), None)

    def opening_message(self, model: str | None) -> str:
        """The play surface's first message: how to play, or, when the model the page opens on has no
        weights (a Space of a variant that has none yet), that it cannot be played and how to get them."""
        choice = self.choice(model or self.default_model())
        if choice is None or choice.playable:
            return message_html(WELCOME)
        return message_html(
            f"{choice.value} has no trained weights yet, so it cannot be played here. {choice.how_to_get}", error=True
        )

    def model_notes(self) -> str:
        """Markdown: which choices play, and for the others how to get them."""
        choices = all_choices(self.registry)
        playable = [c.value for c in choices if c.playable]
        lines = [
            f"**Playable:** {', '.join(playable)}"
            if playable
            else "**No model has weights on this machine yet**, so nothing can be played."
        ]
        lines += [f"- `{c.value}`: {c.how_to_get}" for c in choices if not c.playable]
        return "\n".join(lines)

    def games(self) -> list[str]:
        return list(GAMES)

    def game_choices(self) -> list[tuple[str, str]]:
        """(label, game) for the game pickers. Every game is offered, as any level can start a model, but a
        held-out game says so: no zoo model was trained on it, so it is there for fine-tunes of it."""
        note = " (held out: no zoo model trained on it; for fine-tunes)"
        return [(name + note if name in HELD_OUT else name, name) for name in GAMES]

    def start(self, session: PlaySession | None, model: str, start_kind: str, game: str, seed, upload: str | None):
        """A new session (the old one is closed). Returns (session, surface html, whether the timer loop should
        run: never when frames stream over the WebSocket)."""
        if session is not None:
            session.close()
        try:
            if start_kind == START_UPLOAD:
                frame, label = load_start_image(upload, self.config.upload), f"uploaded image {Path(upload).name}"
            else:
                seed = _level_seed(seed)
                frame, label = first_frame(game, seed), f"{game} level {seed}"
            loaded = self.models.get(model)
        except (StartImageError, zoo.WeightsNotAvailable, ValueError) as err:
            return None, message_html(f"Cannot start: {err}", error=True), False
        session = PlaySession(loaded, model, frame, label, self.config.session)
        if self.streams is not None:
            session.stream_token = self.streams.register(session)
        return session, self._frame(session, new_start=True), self.streams is None

    def step_frame(self, session: PlaySession | None, key_state: str | None):
        """The next frame under the page's key state: ("frame", header, jpeg) with header {key_seq, start_id,
        hud}, or ("message", surface html, is_error) when the loop should stop."""
        if session is None:
            return "message", message_html(WELCOME), False
        try:
            key_seq, keys = parse_key_state(key_state)
            session.step(keys)
        except SessionExpired as err:
            return "message", message_html(str(err)), False
        except ValueError as err:  # a malformed request (the page only sends known keys)
            return "message", message_html(f"Bad input from the page: {err}", error=True), True
        return (
            "frame",
            {"key_seq": key_seq, "start_id": session.start_id, "hud": hud_line(session.summary())},
            session.jpeg,
        )

    def step(self, session: PlaySession | None, key_state: str | None) -> tuple[str, bool]:
        """The timer loop's step: (surface html, whether the loop should go on)."""
        kind, *payload = self.step_frame(session, key_state)
        if kind == "message":
            return payload[0], False
        header, jpeg = payload
        return frame_html(jpeg, header["key_seq"], header["start_id"], header["hud"]), True

    def reset(self, session: PlaySession | None) -> tuple[str, bool]:
        if session is None:
            return message_html(WELCOME), False
        try:
            session.reset()
        except SessionExpired as err:
            return message_html(str(err)), False
        return self._frame(session, new_start=True), self.streams is None

    def save_recording(self, session: PlaySession | None, fmt: str) -> tuple[str | None, str]:
        """(path of the written file or None, a message for the page)."""
        if session is None:
            return None, "Nothing recorded yet: press Start and play first."
        try:
            path = session.save_recording(self.recordings_dir, fmt)
        except RecordingError as err:
            return None, str(err)
        return str(path), f"Saved {len(session.recording)} frames ({session.start_label}, {session.model_name})."

    def _frame(self, session: PlaySession, key_seq: int = 0, new_start: bool = False) -> str:
        if new_start:  # each start or reset gets a new id: the page starts its statistics over
            session.start_id = next(self._start_ids)
        return frame_html(
            session.jpeg, key_seq, session.start_id, hud_line(session.summary()), stream=session.stream_token
        )


def _level_seed(seed) -> int:
    try:
        value = int(seed)
    except (TypeError, ValueError):
        value = None
    if value is None or value < 0 or value != float(seed):
        raise ValueError(f"the level seed must be a whole number >= 0, got {seed!r}")
    return value
