"""In-browser play speed: serve the app, open it in headless Chromium, play, and read what the page measured.

The page itself measures frames/s and keypress-to-frame latency (core/play/page.py,
`window.__pocketworld.report()`), so this is the number a player sees, network and
rendering included, not the model step alone (`pocketworld bench play` times that).
Keys alternate RIGHT / LEFT+Z every second so that latency samples keep coming.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass

from core.games.web import CHROMIUM_ARGS


@dataclass
class BrowserBenchResult:
    model: str
    threads: int
    loop: str
    seconds: float
    frames: int
    fps: float
    key_to_frame_ms_p50: float
    key_to_frame_ms_p95: float
    key_samples: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    return path


def bench_browser(
    model: str = "nano",
    seconds: float = 20.0,
    threads: int = 2,
    loop: str = "websocket",
    startup_timeout: float = 120.0,
) -> BrowserBenchResult:
    """Serve the app (`python app.py --model MODEL --loop LOOP`), play for `seconds`, return the page's own
    measurements."""
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen(
        [sys.executable, "-m", "core.play.app", "--port", str(port), "--threads", str(threads), "--model", model]
        + ["--loop", loop],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(app, url, startup_timeout)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.goto(url, wait_until="load")
                page.click("#pw-start", timeout=60_000)
                page.wait_for_selector("#pw-surface img", timeout=60_000)
                page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a form field
                page.wait_for_function("window.__pocketworld.report().frames >= 2", timeout=60_000)
                started = time.monotonic()
                while time.monotonic() - started < seconds:
                    for keys in (["ArrowRight"], ["ArrowLeft", "z"]):
                        for key in keys:
                            page.keyboard.down(key)
                        page.wait_for_timeout(1000)
                        for key in keys:
                            page.keyboard.up(key)
                report = page.evaluate("window.__pocketworld.report()")
            finally:
                browser.close()
    finally:
        stop(app)
    return BrowserBenchResult(
        model=model,
        threads=threads,
        loop=loop,
        seconds=round(time.monotonic() - started, 1),
        frames=int(report["frames"]),
        fps=round(report["fps"], 2),
        key_to_frame_ms_p50=round(report["key_to_frame_ms_p50"], 1),
        key_to_frame_ms_p95=round(report["key_to_frame_ms_p95"], 1),
        key_samples=int(report["key_samples"]),
    )


def wait_until_served(app: subprocess.Popen, url: str, timeout: float) -> None:
    """Poll url until the app serves it; RuntimeError if the app exits first, TimeoutError if it never serves."""
    deadline = time.monotonic() + timeout
    while True:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with {app.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not serve {url} within {timeout:.0f} s") from None
            time.sleep(0.5)  # polling a server coming up


def stop(app: subprocess.Popen) -> None:
    app.terminate()
    try:
        app.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait()


def as_dict(result: BrowserBenchResult) -> dict:
    return asdict(result)
