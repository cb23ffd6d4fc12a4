"""The play page's HTML and JavaScript: held keys out, frames in, measured in the browser.

A `gr.Timer` in app.py asks for a frame every 1/TARGET_FPS s, sending the key state that a
small hidden component (`KEYS_JS`) keeps current. We chose the timer over a loop paced by the
page (each frame requesting the next through a custom event) by measurement: with a 40 ms step
on our 2-core CPU the timer delivered 12.6-13.0 frames/s and the page-paced loop 5.2-6.4,
because the timer's next request is already on its way while a frame is computed, whereas the
paced loop adds a full browser round trip to every frame. A tick that comes while the last is
still computing is dropped, so a slow model never builds a queue.

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
  frameTimes: [], keyLatencies: [], publish: () => {},
  press(key) {
    if (this.held.has(key)) return;
    this.held.add(key); this.keySeq += 1; this.pressedAt.set(this.keySeq, performance.now()); this.publish();
  },
  release(key) { if (this.held.delete(key)) { this.keySeq += 1; this.publish(); } },
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
});
"""

# The hidden key-state component: its value ("KEYSEQ|key|key") is an input of every tick.
KEYS_JS = _INIT_JS + """
const KEYS = %s;
const keyName = (e) => (e.key === ' ' ? 'space' : e.key.toLowerCase());
const typing = (e) => ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName);
pw.publish = () => { props.value = [pw.keySeq, ...pw.held].join('|'); };
document.addEventListener('keydown', (e) => {
  if (typing(e) || !KEYS.includes(keyName(e))) return;
  e.preventDefault();  // arrows and space would scroll the page
  pw.press(keyName(e));
});
document.addEventListener('keyup', (e) => pw.release(keyName(e)));
window.addEventListener('blur', () => [...pw.held].forEach((key) => pw.release(key)));  // no keyup comes while away
""" % json.dumps(PLAY_KEYS)

SURFACE_JS = _INIT_JS + r"""
function frameArrived() {
  // Read the new value itself: watch() may run before the DOM shows it.
  const value = String(props.value ?? '');
  const match = value.match(/data-pw-keyseq="(\d+)" data-pw-start="(\d+)"/);
  if (!match) return;  // a message, not a frame
  const now = performance.now();
  const [keySeq, startId] = [Number(match[1]), Number(match[2])];
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
  const r = pw.report();
  const text = `${r.fps.toFixed(1)} FPS · key→frame p50 ${r.key_to_frame_ms_p50.toFixed(0)} ms ` +
               `p95 ${r.key_to_frame_ms_p95.toFixed(0)} ms`;
  requestAnimationFrame(() => { const hud = element.querySelector('.pw-browser'); if (hud) hud.textContent = text; });
}
watch('value', frameArrived);
"""

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


def frame_html(jpeg: bytes, key_seq: int, start_id: int, hud: dict) -> str:
    """A frame for the surface. `key_seq` echoes the key change it was computed under (for the page's
    latency); `start_id` tells the page when a new start or reset begins."""
    data = base64.b64encode(jpeg).decode("ascii")
    server = (f"model step p50 {hud['step_ms_p50']:.0f} ms p95 {hud['step_ms_p95']:.0f} ms · "
              f"frame {hud['frame']} · {html.escape(hud['action'])} · {html.escape(hud['model'])}")
    return (f'<div class="pw-screen" data-pw-keyseq="{key_seq}" data-pw-start="{start_id}">'
            f'<img alt="game frame" src="data:image/jpeg;base64,{data}"></div>'
            f'<div class="pw-hud"><span class="pw-browser">starting…</span> · {server}</div>')


def message_html(text: str, error: bool = False) -> str:
    """A message in place of the game."""
    kind = "pw-message pw-error" if error else "pw-message"
    return f'<div class="{kind}">{html.escape(text)}</div>'
