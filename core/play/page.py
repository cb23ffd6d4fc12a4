"""The play page's HTML and JavaScript: held keys out, frames in, measured in the browser.

Two frame loops, chosen by `--loop`. The default streams frames over a WebSocket route beside
Gradio (core/play/stream.py): the page sends its key state when a key changes and acknowledges
each frame it shows. The other, `timer`, has a `gr.Timer` in app.py ask for a frame every
1/TARGET_FPS s, sending the key state that a small hidden component (`KEYS_JS`) keeps current.
Measured with `pocketworld bench browser --loop websocket,timer` (nano, Chromium and the app on
the same 2 cores, idle): with 1 torch thread the stream gave 9.7 FPS, keypress-to-frame p50 164 /
p95 241 ms, the timer 5.6 FPS, 222 / 299 ms; with 2 threads 7.1 FPS, 258 / 374 ms vs 5.5 FPS,
186 / 263 ms. Letting the page hold only one unshown frame instead of two dropped the stream to
3.8 FPS (the server then idles while the page draws). Before the stream, the timer had beaten a
loop paced by the page (each frame requesting the next through a custom event), 12.6-13.0 vs
5.2-6.4 frames/s with a 40 ms step, since the timer's next request is already on its way while a
frame is computed; a tick that comes while the last is still computing is dropped.

The page measures what the player feels: frames/s, and keypress-to-frame latency (from the
keydown to the first frame computed with that key, identified by the key-change number the
server echoes back). `window.__pocketworld.report()` returns them for tests and load scripts.
"""

from __future__ import annotations

import base64
import html
import json

from core.actions import INPUT_BUTTONS
from core.games import FPS

STREAM_PATH = "/pocketworld/stream"  # the frame stream's WebSocket route (core/play/stream.py)
TARGET_FPS = FPS  # our games run at 30 FPS; a faster model is held to it so the world keeps its speed
PLAY_KEYS = sorted(k for k in INPUT_BUTTONS if k in {"arrowup", "arrowdown", "arrowleft", "arrowright",
                                                      "w", "a", "s", "d", "z", "space"})

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

# Shared by the three components below: one key state per browser tab.
_INIT_JS = """
const pw = (window.__pocketworld ??= {
  held: new Set(), keySeq: 0, pressedAt: new Map(), startId: null, frames: 0,
  frameTimes: [], keyLatencies: [], publish: () => {}, ws: null, streamToken: null,
  press(key) {
    if (this.held.has(key)) return;
    this.held.add(key); this.keySeq += 1; this.pressedAt.set(this.keySeq, performance.now()); this.publish();
  },
  release(key) { if (this.held.delete(key)) { this.keySeq += 1; this.publish(); } },
  keyState() { return [this.keySeq, ...this.held].join('|'); },
  percentile(values, q) {
    if (!values.length) return 0;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q / 100 * sorted.length))];
  },
  fps() {
    const t = this.frameTimes; if (t.length < 2) return 0;
    return (t.length - 1) / ((t[t.length - 1] - t[0]) / 1000);
  },
  report() {
    return { fps: this.fps(), frames: this.frames, key_samples: this.keyLatencies.length,
             key_to_frame_ms_p50: this.percentile(this.keyLatencies, 50),
             key_to_frame_ms_p95: this.percentile(this.keyLatencies, 95) };
  },
  hudText(r) {  // before the first key press there is no latency to show: a dash, not a measured-looking 0
    const ms = (value) => (r.key_samples ? `${value.toFixed(0)} ms` : '–');
    return `${r.fps.toFixed(1)} FPS · key→frame p50 ${ms(r.key_to_frame_ms_p50)} p95 ${ms(r.key_to_frame_ms_p95)}`;
  },
});
"""

# The hidden key-state component: its value ("KEYSEQ|key|key") is an input of every tick.
KEYS_JS = _INIT_JS + """
const KEYS = %s;
const keyName = (e) => (e.key === ' ' ? 'space' : e.key.toLowerCase());
const typing = (e) => ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName);
pw.publish = () => {
  props.value = pw.keyState();  // the timer loop reads it with each tick
  if (pw.ws && pw.ws.readyState === WebSocket.OPEN) pw.ws.send(pw.keyState());  // the stream, at once
};
document.addEventListener('keydown', (e) => {
  if (typing(e) || !KEYS.includes(keyName(e))) return;
  e.preventDefault();  // arrows and space would scroll the page
  pw.press(keyName(e));
});
document.addEventListener('keyup', (e) => pw.release(keyName(e)));
window.addEventListener('blur', () => [...pw.held].forEach((key) => pw.release(key)));  // no keyup comes while away
""" % json.dumps(PLAY_KEYS)

SURFACE_JS = _INIT_JS + r"""
function frameShown(keySeq, startId) {
  const now = performance.now();
  if (startId !== pw.startId) {  // a new start or reset: statistics start over
    pw.startId = startId; pw.frameTimes = []; pw.keyLatencies = []; pw.frames = 0;
  }
  for (const [seq, pressed] of pw.pressedAt) {  // presses this frame is the first to include
    if (seq <= keySeq) { pw.keyLatencies.push(now - pressed); pw.pressedAt.delete(seq); }
  }
  pw.frames += 1;
  pw.frameTimes.push(now);
  while (pw.frameTimes.length > 2 && now - pw.frameTimes[0] > 3000) pw.frameTimes.shift();
  if (pw.keyLatencies.length > 300) pw.keyLatencies.shift();
  const text = pw.hudText(pw.report());
  requestAnimationFrame(() => { const hud = element.querySelector('.pw-browser'); if (hud) hud.textContent = text; });
}

// The WebSocket loop (core/play/stream.py): frames come as [u32 header size][JSON header][JPEG].
function openStream(token) {
  if (token === pw.streamToken) return;
  if (pw.ws) { pw.ws.onclose = pw.ws.onerror = null; pw.ws.close(); pw.ws = null; }
  pw.streamToken = token;
  if (!token) return;
  const url = new URL('STREAM_PATH/' + token, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  pw.ws = ws;
  ws.onopen = () => ws.send(pw.keyState());
  ws.onerror = () => {
    const hud = element.querySelector('.pw-browser');
    if (hud) hud.textContent = 'the frame stream could not connect (a proxy blocking WebSockets?): ' +
                               'serve the app with --loop timer';
  };
  ws.onmessage = async (event) => {
    if (typeof event.data === 'string') {  // the game ended (idle timeout, closed tab): say why
      pw.streamToken = null; pw.ws = null;
      element.innerHTML = JSON.parse(event.data).message;
      return;
    }
    const size = new DataView(event.data).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(event.data, 4, size)));
    const img = element.querySelector('.pw-screen img');
    if (!img) return;
    const previous = img.src;
    img.src = URL.createObjectURL(new Blob([new Uint8Array(event.data, 4 + size)], {type: 'image/jpeg'}));
    try { await img.decode(); } catch (err) { /* a newer frame replaced it first */ }
    if (previous.startsWith('blob:')) URL.revokeObjectURL(previous);
    const server = element.querySelector('.pw-server');
    if (server) server.textContent = header.hud;
    frameShown(header.key_seq, header.start_id);
    if (ws.readyState === WebSocket.OPEN) ws.send('ack');
  };
}

function valueChanged() {
  // Read the new value itself: watch() may run before the DOM shows it.
  const value = String(props.value ?? '');
  const stream = value.match(/data-pw-stream="([^"]+)"/);
  openStream(stream ? stream[1] : null);
  const match = value.match(/data-pw-keyseq="(\d+)" data-pw-start="(\d+)"/);
  if (match) frameShown(Number(match[1]), Number(match[2]));  // otherwise a message, not a frame
}
watch('value', valueChanged);
""".replace("STREAM_PATH", STREAM_PATH.lstrip("/"))  # relative: an app served under a sub-path keeps it

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

CONTROLS_JS = _INIT_JS + """
element.querySelectorAll('button[data-key]').forEach((button) => {
  const key = button.dataset.key;
  button.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    pw.press(key);
    // Keep the release on this button even if the finger slides off it (no-op for synthetic events).
    try { button.setPointerCapture(e.pointerId); } catch (err) { /* no such active pointer */ }
  });
  for (const name of ['pointerup', 'pointercancel', 'lostpointercapture']) {
    button.addEventListener(name, () => pw.release(key));
  }
});
"""


def hud_line(hud: dict) -> str:
    """The server's half of the HUD (plain text): model step time (a dash before the first step), frame,
    action, model."""
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} ms"
    return (f"model step p50 {ms(hud['step_ms_p50'])} p95 {ms(hud['step_ms_p95'])} · "
            f"frame {hud['frame']} · {hud['action']} · {hud['model']}")


def frame_html(jpeg: bytes, key_seq: int, start_id: int, hud: str, stream: str | None = None) -> str:
    """A frame for the surface. `key_seq` echoes the key change it was computed under (for the page's
    latency); `start_id` tells the page when a new start or reset begins; `stream` is the token of the
    session's frame stream (core/play/stream.py), if the app streams."""
    data = base64.b64encode(jpeg).decode("ascii")
    stream_attr = f' data-pw-stream="{html.escape(stream)}"' if stream else ""
    return (f'<div class="pw-screen" data-pw-keyseq="{key_seq}" data-pw-start="{start_id}"{stream_attr}>'
            f'<img alt="game frame" src="data:image/jpeg;base64,{data}"></div>'
            f'<div class="pw-hud"><span class="pw-browser">starting…</span> · '
            f'<span class="pw-server">{html.escape(hud)}</span></div>')


def message_html(text: str, error: bool = False) -> str:
    """A message in place of the game."""
    kind = "pw-message pw-error" if error else "pw-message"
    return f'<div class="{kind}">{html.escape(text)}</div>'
