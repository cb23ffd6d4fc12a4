"""The app in a real browser: start it, press keys, see frames change and FPS shown.

Runs Debian's chromium through pip's playwright (never `playwright install`, which downloads
a browser); skips only when either is missing. Leaves a screenshot in runs/app_browser/.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.games.web import CHROMIUM_ARGS
from core.play.browser_bench import free_port, stop, wait_until_served
from core.world_model import WorldModel
from finetune.lora import add_lora, save_adapter
from finetune.registry import LocalRegistry
from tests.conftest import tiny_config
from tests.train_fixtures import write_gameplay_shards

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = REPO / "runs" / "app_browser" / "play.png"

pytestmark = pytest.mark.slow


@pytest.fixture(params=["websocket", "timer"])
def app_url(tmp_path, request):
    """The app serving a tiny model, with each frame loop in turn."""
    torch.manual_seed(0)
    model = WorldModel(tiny_config())
    # A fresh decoder starts as "nothing changed" (output = previous frame); untrained but
    # non-zero output weights make every dreamed frame differ from the last, as a trained model's do.
    torch.nn.init.normal_(model.decoder.to_rgb.weight, std=0.5)
    model.save_pretrained(tmp_path / "zoo" / "nano")
    # one shared fine-tune of that nano, for the Community tab
    adapter = save_adapter(add_lora(WorldModel(tiny_config()), "nano"), tmp_path / "adapter")
    LocalRegistry(tmp_path / "registry").push(adapter, "local/jumpy", game="platformer")
    port = free_port()
    env = {
        **os.environ,
        "POCKETWORLD_ZOO": str(tmp_path / "zoo"),
        "POCKETWORLD_DATA": str(tmp_path / "data"),
        "POCKETWORLD_REGISTRY": str(tmp_path / "registry"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--threads", "1", "--loop", request.param],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        try:
            wait_until_served(app, url, timeout=120)
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(f"{err}:\n{(tmp_path / 'app.log').read_text()}")
        yield url
    finally:
        stop(app)
        log.close()


@pytest.fixture
def page(app_url):
    """Headless Chromium on the app's page; skips only when chromium or playwright is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(app_url, wait_until="load")  # "networkidle" never comes while the frame loop runs
            yield page
        finally:
            browser.close()


def test_keys_in_the_page_play_the_world_and_fps_is_shown(page):
    page.wait_for_selector("#pw-start", timeout=60_000)
    page.wait_for_selector("#pw-surface", state="attached", timeout=60_000)  # under load it can come later
    # Every frame the page shows (its pixels: a streamed frame's URL is new even if the picture is not),
    # so the start frame is seen even if the next one replaces it at once.
    page.evaluate("""() => { window.__seen = new Set();
        const canvas = document.createElement('canvas'); canvas.width = canvas.height = 64;
        const look = (img) => { if (!img.complete || !img.naturalWidth) return;
            canvas.getContext('2d').drawImage(img, 0, 0, 64, 64); window.__seen.add(canvas.toDataURL()); };
        document.querySelector('#pw-surface').addEventListener('load', (e) => look(e.target), true);
        new MutationObserver(() => document.querySelectorAll('#pw-surface img').forEach(look)).observe(
            document.querySelector('#pw-surface'), {subtree: true, childList: true, attributes: true}); }""")
    page.click("#pw-start")
    page.wait_for_selector("#pw-surface img", timeout=60_000)

    page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a form field
    page.keyboard.down("ArrowRight")
    page.wait_for_function("window.__pocketworld.report().frames >= 4", timeout=60_000)
    page.keyboard.up("ArrowRight")
    page.keyboard.down("z")
    page.wait_for_function("window.__pocketworld.report().key_samples >= 2", timeout=60_000)
    page.keyboard.up("z")
    page.locator('#pw-controls button[data-key="arrowleft"]').dispatch_event("pointerdown")
    page.wait_for_function("window.__pocketworld.report().key_samples >= 3", timeout=60_000)
    page.wait_for_function(
        "/LEFT · nano/.test(document.querySelector('#pw-surface .pw-hud').innerText)", timeout=60_000
    )  # the on-screen button reached the model
    page.wait_for_function("window.__pocketworld.report().frames >= 8", timeout=60_000)

    assert page.evaluate("window.__seen.size") >= 2, "the frame never changed"
    # each frame re-renders the HUD with "starting…", and the page writes its FPS on the next animation frame
    hud = page.wait_for_function(
        r"""() => { const text = document.querySelector('#pw-surface .pw-hud').innerText;
                                              return /\d+\.\d FPS/.test(text) && text; }""",
        timeout=60_000,
    ).json_value()
    assert re.search(r"\d+\.\d FPS", hud) and re.search(r"frame \d+", hud), hud
    assert int(re.search(r"frame (\d+)", hud).group(1)) >= 4
    report = page.evaluate("window.__pocketworld.report()")
    assert report["fps"] > 0 and report["key_to_frame_ms_p50"] > 0
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    print(f"browser: {report}; screenshot {SCREENSHOT}")

    page.get_by_role("tab", name="Benchmarks").click()  # the other tabs answer too
    page.wait_for_selector("#pw-bench :text('No evaluation report yet')", timeout=60_000)
    page.get_by_role("tab", name="Real or dream?").click()
    page.click("#pw-deal")
    page.wait_for_function("document.querySelectorAll('#pw-pair img').length == 2", timeout=120_000)
    page.wait_for_timeout(2_000)  # a vote before both clips have played (1.8 s) is refused
    page.click("#pw-pick-a")
    page.wait_for_selector("#pw-scoreboard td:text-is('all')", timeout=60_000)  # the vote was counted


@pytest.mark.parametrize("app_url", ["websocket"], indirect=True)
def test_a_shared_fine_tune_is_found_read_and_played_from_the_community_tab(page):
    page.get_by_role("tab", name="Community").click()
    page.wait_for_selector("#pw-cm-note :text('1 of 1 shared fine-tune')", timeout=60_000)
    page.locator("#pw-cm-table span:text-is('local/jumpy')").first.click()
    page.wait_for_selector("#pw-cm-card :text('platformer')", timeout=60_000)  # its card, from the registry
    page.click("#pw-cm-play")
    page.wait_for_selector("#pw-cm-note :text('is picked in the Play tab')", timeout=60_000)
    page.get_by_role("tab", name="Play").click()
    page.click("#pw-start")
    page.wait_for_function("window.__pocketworld.report().frames >= 3", timeout=60_000)
    hud = page.inner_text("#pw-surface .pw-server")
    assert "local/jumpy" in hud, hud  # the fine-tune plays, not the base


@pytest.mark.parametrize("app_url", ["websocket"], indirect=True)
def test_an_upload_is_fine_tuned_pushed_and_shared_from_the_fine_tune_tab(page, tmp_path):
    shard = next(write_gameplay_shards(tmp_path / "play", samples=1, frames=40).glob("*.tar"))
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#pw-ft-gameplay input[type=file]").set_input_files(str(shard))
    # uploaded (the file list shows the name's stem and its extension in elements of their own)
    page.wait_for_selector(f"#pw-ft-gameplay :text('{shard.stem}')", timeout=60_000)
    page.fill("#pw-ft-game textarea, #pw-ft-game input", "Sprite Land")
    steps = page.locator("#pw-ft-steps input[type=number]")
    steps.fill("10")
    steps.press("Enter")
    page.click("#pw-ft-start")
    page.wait_for_selector("#pw-ft-status :text('Done in')", timeout=240_000)
    page.fill("#pw-ft-repo textarea, #pw-ft-repo input", "me/sprite-land")
    page.click("#pw-ft-push")
    page.wait_for_selector("#pw-ft-pushed :text('Pushed to')", timeout=60_000)
    page.get_by_role("tab", name="Community").click()
    page.wait_for_selector("#pw-cm-table span:text-is('me/sprite-land')", timeout=60_000)


def test_bench_browser_reads_the_pages_own_fps_and_key_latency(tmp_path, monkeypatch):
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from core.play.browser_bench import bench_browser

    WorldModel(tiny_config()).save_pretrained(tmp_path / "zoo" / "nano")
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("POCKETWORLD_DATA", str(tmp_path / "data"))
    result = bench_browser("nano", seconds=4, threads=1)
    assert result.fps > 0 and result.frames >= 2
    assert result.key_samples >= 1 and 0 < result.key_to_frame_ms_p50 <= result.key_to_frame_ms_p95
