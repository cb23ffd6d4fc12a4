"""The play surface's HTML and JavaScript: frames in, held keys out, measured in the browser.

The loop is paced by the client: when a frame arrives, the page asks for the next one (no
sooner than 1/TARGET_FPS after the last request), carrying the keys held at that moment. So
the model runs back to back at its own pace, no tick is wasted waiting on a timer, and a slow
model never builds a queue. The page measures what the player feels, frames/s and
keypress-to-frame latency (from the keydown to the first frame computed with that key held),
and shows them; `window.__pocketworld.report()` returns them for tests and load scripts.
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
#pw-controls { user-select: none; touch-action: none; }
#pw-controls .pw-pad { display: grid; grid-template-columns: repeat(3, 56px); gap: 6px; }
#pw-controls button { height: 56px; font-size: 1.4em; border-radius: 8px; }
#pw-controls .pw-fire { width: 130px; margin-left: 24px; }
"""

# Shared by the surface and the on-screen controls: one held-key set per browser tab.
_INIT_JS = """
const pw = (window.__pocketworld ??= {
  held: new Set(), seq: 0, pending: new Map(), inFlight: false, running: false, lastSent: 0,
  frameTimes: [], roundTrips: [], keyLatencies: [], keyPressedAt: null, timer: null,
  press(key) { if (!this.held.has(key)) { this.held.add(key); this.keyPressedAt ??= performance.now(); } },
  release(key) { this.held.delete(key); },
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
    return { fps: this.fps(), frames: this.seq, key_to_frame_ms_p50: this.percentile(this.keyLatencies, 50),
             key_to_frame_ms_p95: this.percentile(this.keyLatencies, 95), key_samples: this.keyLatencies.length,
             round_trip_ms_p50: this.percentile(this.roundTrips, 50),
             round_trip_ms_p95: this.percentile(this.roundTrips, 95) };
  },
});
"""

SURFACE_JS = _INIT_JS + r"""
const KEYS = %(keys)s;
const keyName = (e) => (e.key === ' ' ? 'space' : e.key.toLowerCase());
const typing = (e) => ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName);
if (!pw.listening) {
  pw.listening = true;
  document.addEventListener('keydown', (e) => {
    if (typing(e) || !KEYS.includes(keyName(e))) return;
    e.preventDefault();  // arrows and space would scroll the page
    pw.press(keyName(e));
  });
  document.addEventListener('keyup', (e) => pw.release(keyName(e)));
  window.addEventListener('blur', () => pw.held.clear());  // keys released while away never send keyup
  document.addEventListener('visibilitychange', () => requestFrame());
}
function requestFrame() {
  clearTimeout(pw.timer);
  if (!pw.running || pw.inFlight || document.hidden) return;
  const wait = pw.lastSent + 1000 / %(fps)d - performance.now();
  if (wait > 0) { pw.timer = setTimeout(requestFrame, wait); return; }
  pw.inFlight = true;
  pw.seq += 1;
  pw.lastSent = performance.now();
  pw.pending.set(pw.seq, pw.lastSent);
  trigger('step', { keys: [...pw.held].join('|'), seq: pw.seq });
}
function frameArrived() {
  // Read the new value itself: watch() may run before the DOM shows it.
  const value = String(props.value ?? '');
  const match = value.match(/data-pw-seq="(\d+)"[^>]*data-pw-running="(\d)"/);
  const now = performance.now();
  const seq = match ? Number(match[1]) : -1;
  if (seq <= 0) {  // a new start, a reset or a message: stats start over
    pw.pending.clear(); pw.inFlight = false; pw.frameTimes = []; pw.roundTrips = [];
    pw.keyLatencies = []; pw.keyPressedAt = null;
  } else if (pw.pending.has(seq)) {
    const sent = pw.pending.get(seq);
    pw.pending.delete(seq);
    pw.inFlight = false;
    pw.roundTrips.push(now - sent);
    if (pw.keyPressedAt !== null && sent >= pw.keyPressedAt) {
      pw.keyLatencies.push(now - pw.keyPressedAt);
      pw.keyPressedAt = null;
    }
  } else {
    return;  // a late answer to a request from before a restart
  }
  pw.frameTimes.push(now);
  while (pw.frameTimes.length > 2 && now - pw.frameTimes[0] > 3000) pw.frameTimes.shift();
  for (const list of [pw.roundTrips, pw.keyLatencies]) if (list.length > 300) list.shift();
  pw.running = Boolean(match) && match[2] === '1';
  const r = pw.report();
  const text = `${r.fps.toFixed(1)} FPS · key→frame p50 ${r.key_to_frame_ms_p50.toFixed(0)} ms ` +
               `p95 ${r.key_to_frame_ms_p95.toFixed(0)} ms`;
  requestAnimationFrame(() => { const hud = element.querySelector('.pw-browser'); if (hud) hud.textContent = text; });
  requestFrame();
}
watch('value', frameArrived);
""" % {"keys": json.dumps(PLAY_KEYS), "fps": TARGET_FPS}

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
  button.addEventListener('pointerdown', (e) => { e.preventDefault(); button.setPointerCapture(e.pointerId); pw.press(key); });
  for (const name of ['pointerup', 'pointercancel', 'lostpointercapture']) button.addEventListener(name, () => pw.release(key));
});
"""


def frame_html(jpeg: bytes, seq: int, start_id: int, running: bool, hud: dict) -> str:
    """A frame for the surface. `seq` echoes the page's request (0 for a start or reset); `start_id`
    makes each start's first frame a new value, so the page restarts its loop even on an identical frame."""
    data = base64.b64encode(jpeg).decode("ascii")
    server = (f"model step p50 {hud['step_ms_p50']:.0f} ms p95 {hud['step_ms_p95']:.0f} ms · "
              f"frame {hud['frame']} · {html.escape(hud['action'])} · {html.escape(hud['model'])}")
    return (f'<div class="pw-screen" data-pw-seq="{seq}" data-pw-start="{start_id}" '
            f'data-pw-running="{int(running)}"><img alt="game frame" src="data:image/jpeg;base64,{data}"></div>'
            f'<div class="pw-hud"><span class="pw-browser">starting…</span> · {server}</div>')


def message_html(text: str, error: bool = False) -> str:
    """A message in place of the game (no data-pw-seq: the page stops its loop)."""
    kind = "pw-message pw-error" if error else "pw-message"
    return f'<div class="{kind}">{html.escape(text)}</div>'
