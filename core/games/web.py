"""Web games: an HTML5 canvas game in headless Chromium (through Playwright), as a one-env game.

"web:<file path or http://localhost... URL>" loads the page with `?seed=N`, and every step
holds the agent's keys (arrows + Space), advances the page's own clock by exactly 1/30 s with
Playwright's fake clock (timers, requestAnimationFrame and Date all follow it, so recording runs
at 30 logical FPS however slow the machine is) and captures the canvas. Pages may expose
`window.pocketworldState()` (numbers: recorded as the ground-truth state) and
`window.pocketworldDone()` (true ends the episode). Needs the `web` extra and a Chromium:
Debian's `chromium` package at /usr/bin/chromium, or $POCKETWORLD_CHROMIUM; never a browser
download.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from core import actions as vocab
from core.games.base import FPS
from core.games.gym_adapter import letterbox

KEYS = {"UP": "ArrowUp", "DOWN": "ArrowDown", "LEFT": "ArrowLeft", "RIGHT": "ArrowRight", "FIRE": "Space"}
# headless Chromium without the background work that would compete with the model for CPU
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """Path of a Chromium to drive: $POCKETWORLD_CHROMIUM, else chromium on PATH (Debian's package)."""
    return os.environ.get("POCKETWORLD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class WebConfig:
    canvas: str = "canvas"  # CSS selector of the canvas to capture
    max_steps: int = 1800  # episode time limit in frames
    num_envs: int = 1  # one page; more would only share the same browser's CPU


class WebGame:
    """The VecGame interface over one browser page."""

    def __init__(self, target: str, config: WebConfig | None = None):
        self.config = config or WebConfig()
        if self.config.num_envs != 1:
            raise ValueError(f"web games record one page at a time (num_envs=1), got {self.config.num_envs}")
        self.url = target if target.startswith(("http://", "https://")) else _file_url(target)
        self.name, self.num_envs = f"web:{target}", 1
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise ValueError(
                "web games need Playwright: pip install 'pocketworld[web]' (and Debian's chromium)"
            ) from None
        chromium = find_chromium()
        if chromium is None:
            raise ValueError("web games need a Chromium: apt-get install chromium, or set $POCKETWORLD_CHROMIUM")
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        self.page = None
        self.t = np.zeros(1, dtype=np.int64)
        self.won = np.zeros(1, dtype=bool)
        self.held: set[str] = set()
        self.layout: dict[str, list[int]] = {}

    def reset(self, seeds, env_ids=None) -> np.ndarray:
        seed = int(np.asarray(seeds).reshape(-1)[0])
        if self.page is not None:
            self.page.close()
        self.page = self._browser.new_page()
        self.page.clock.install(time=0)  # before the page loads, so its timers start on our clock...
        self.page.clock.pause_at(1)  # ...and that clock moves only when a step runs it
        separator = "&" if "?" in self.url else "?"
        self.page.goto(f"{self.url}{separator}{urlencode({'seed': seed})}", wait_until="load")
        self.page.wait_for_selector(self.config.canvas)
        self.held, self.t[0] = set(), 0
        state = self._page_state()
        self.layout = {"state": [0, len(state), len(state)]} if state is not None else {}
        return self._capture()[None]

    def step(self, actions) -> tuple[np.ndarray, np.ndarray]:
        action = vocab.validate(int(np.asarray(actions).reshape(-1)[0]))
        wanted = {KEYS[b] for b in vocab.to_buttons(action)}
        for key in sorted(self.held - wanted):
            self.page.keyboard.up(key)
        for key in sorted(wanted - self.held):
            self.page.keyboard.down(key)
        self.held = wanted
        # whole milliseconds that keep the page's clock at exactly t/30 s on average
        self.page.clock.run_for(round((self.t[0] + 1) * 1000 / FPS) - round(self.t[0] * 1000 / FPS))
        self.t[0] += 1
        done = self.t[0] >= self.config.max_steps or bool(
            self.page.evaluate(
                "() => typeof window.pocketworldDone === 'function' && Boolean(window.pocketworldDone())"
            )
        )
        return self._capture()[None], np.array([done])

    def _capture(self) -> np.ndarray:
        data_url = self.page.evaluate(f"() => document.querySelector({self.config.canvas!r}).toDataURL('image/png')")
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")
        return letterbox(np.asarray(image))

    def _page_state(self) -> list[float] | None:
        return self.page.evaluate(
            "() => typeof window.pocketworldState === 'function' ? window.pocketworldState().map(Number) : null"
        )

    def state_layout(self) -> dict[str, list[int]]:
        return self.layout

    def state_vector(self) -> np.ndarray:
        state = self._page_state() if self.layout else []
        return np.asarray(state, dtype=np.float32).reshape(1, -1)

    def region(self) -> np.ndarray:
        """No level geometry is known for web games: one region."""
        return np.zeros(1, dtype=np.int64)

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()


def _file_url(path: str) -> str:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"web game page not found: {path} (give an .html file or an http://localhost URL)")
    return file.as_uri()
