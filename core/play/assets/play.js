// The play page's browser side (served as an asset; core/play/page.py wires it into app.py).
//
// One `window.__pocketworld` per browser tab holds the held keys and what the player feels:
// frames/s, and keypress-to-frame latency (from the keydown to the first frame computed with that
// key, identified by the key-change number the server echoes back). `report()` returns them for
// tests and load scripts. Three Gradio components mount onto it from their `js_on_load`:
//   mountKeys      the hidden key-state component ("KEYSEQ|key|key"), an input of every timer tick;
//   mountSurface   the game surface: shows frames, runs the WebSocket frame stream, updates the HUD;
//   mountControls  the on-screen pad for touch screens.
(() => {
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

  // `keys`: the key names the game reads (others pass through to the page).
  pw.mountKeys = (props, keys) => {
    const keyName = (e) => (e.key === ' ' ? 'space' : e.key.toLowerCase());
    const typing = (e) => ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName);
    pw.publish = () => {
      props.value = pw.keyState();  // the timer loop reads it with each tick
      if (pw.ws && pw.ws.readyState === WebSocket.OPEN) pw.ws.send(pw.keyState());  // the stream, at once
    };
    document.addEventListener('keydown', (e) => {
      if (typing(e) || !keys.includes(keyName(e))) return;
      e.preventDefault();  // arrows and space would scroll the page
      pw.press(keyName(e));
    });
    document.addEventListener('keyup', (e) => pw.release(keyName(e)));
    window.addEventListener('blur', () => [...pw.held].forEach((key) => pw.release(key)));  // no keyup comes while away
  };

  // `streamPath`: the frame stream's route, relative, so an app served under a sub-path keeps it.
  pw.mountSurface = (element, props, watch, streamPath) => {
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
      const url = new URL(streamPath + '/' + token, window.location.href);
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
  };

  pw.mountControls = (element) => {
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
  };
})();
