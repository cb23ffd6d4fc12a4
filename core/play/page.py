"""The play page's HTML, and the wiring of its JavaScript (assets/play.js): held keys out, frames in,
measured in the browser.

Two frame loops, chosen by `--loop`. The default streams frames over a WebSocket route beside
Gradio (core/play/stream.py): the page sends its key state when a key changes and acknowledges
each frame it shows, so the server computes the next frame while the page draws this one and never
more than the page can show. The other, `timer`, has a `gr.Timer` in app.py ask for a frame every
1/TARGET_FPS s, sending the key state that a small hidden component (`KEYS_JS`) keeps current; it
works behind proxies that block WebSockets. `pocketworld bench browser --loop websocket,timer`
compares the two on a machine (frames/s and keypress-to-frame latency, as the page measures them).

The page's script is one file, served by Gradio as a static asset and loaded through each
component's `head` before its `js_on_load` runs; `js_on_load` only mounts the component onto it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from urllib.parse import quote

from core.actions import INPUT_BUTTONS
from core.games import FPS

STREAM_PATH = "/pocketworld/stream"  # the frame stream's WebSocket route (core/play/stream.py)
LOOPS = ("websocket", "timer")  # how frames reach the page: the stream (core/play/stream.py) or a gr.Timer
TARGET_FPS = FPS  # our games run at 30 FPS; a faster model is held to it so the world keeps its speed
PLAY_KEYS = sorted(
    k
    for k in INPUT_BUTTONS
    if k in {"arrowup", "arrowdown", "arrowleft", "arrowright", "w", "a", "s", "d", "z", "space"}
)

CSS = """
#pw-surface .pw-screen img { width: 512px; max-width: 100%; image-rendering: pixelated; display: block; }
#pw-surface .pw-hud { font-family: monospace; font-size: 0.9em; margin-top: 4px; }
#pw-surface .pw-message { padding: 1em; border-radius: 6px; background: var(--block-background-fill); }
#pw-surface .pw-error { border-left: 4px solid #d33; }
#pw-keys { display: none; }
#pw-controls { user-select: none; touch-action: none; }
#pw-controls .pw-pad { display: grid; grid-template-columns: repeat(3, 56px); gap: 6px; }
#pw-controls button { height: 56px; font-size: 1.4em; border-radius: 8px; }
#pw-controls .pw-fire { width: 130px; margin-left: 24px; }
"""

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # served by Gradio: app.py's launch allows it
PLAY_JS = ASSETS_DIR / "play.js"
# Every component loads the script through its `head` (Gradio loads a src once, before js_on_load runs).
# Relative, as the stream's route is: an app served under a sub-path keeps it.
PAGE_HEAD = f'<script src="gradio_api/file={quote(str(PLAY_JS))}"></script>'
# The hidden key-state component: its value ("KEYSEQ|key|key") is an input of every tick.
KEYS_JS = f"window.__pocketworld.mountKeys(props, {json.dumps(PLAY_KEYS)});"
SURFACE_JS = f"window.__pocketworld.mountSurface(element, props, watch, {json.dumps(STREAM_PATH.lstrip('/'))});"
CONTROLS_JS = "window.__pocketworld.mountControls(element);"

CONTROLS_HTML = """
<div style="display:flex; align-items:center">
  <div class="pw-pad">
    <span></span><button data-key="arrowup" aria-label="up">▲</button><span></span>
    <button data-key="arrowleft" aria-label="left">◀</button><button data-key="arrowdown" aria-label="down">▼</button>
    <button data-key="arrowright" aria-label="right">▶</button>
  </div>
  <button class="pw-fire" data-key="space" aria-label="fire">FIRE</button>
</div>
"""


def hud_line(hud: dict) -> str:
    """The server's half of the HUD (plain text): model step time (a dash before the first step), frame,
    action, model."""

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} ms"

    return (
        f"model step p50 {ms(hud['step_ms_p50'])} p95 {ms(hud['step_ms_p95'])} · "
        f"frame {hud['frame']} · {hud['action']} · {hud['model']}"
    )


def frame_html(jpeg: bytes, key_seq: int, start_id: int, hud: str, stream: str | None = None) -> str:
    """A frame for the surface. `key_seq` echoes the key change it was computed under (for the page's
    latency); `start_id` tells the page when a new start or reset begins; `stream` is the token of the
    session's frame stream (core/play/stream.py), if the app streams."""
    data = base64.b64encode(jpeg).decode("ascii")
    stream_attr = f' data-pw-stream="{html.escape(stream)}"' if stream else ""
    return (
        f'<div class="pw-screen" data-pw-keyseq="{key_seq}" data-pw-start="{start_id}"{stream_attr}>'
        f'<img alt="game frame" src="data:image/jpeg;base64,{data}"></div>'
        f'<div class="pw-hud"><span class="pw-browser">starting…</span> · '
        f'<span class="pw-server">{html.escape(hud)}</span></div>'
    )


def message_html(text: str, error: bool = False) -> str:
    """A message in place of the game."""
    kind = "pw-message pw-error" if error else "pw-message"
    return f'<div class="{kind}">{html.escape(text)}</div>'
