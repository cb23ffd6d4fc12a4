"""The Play tab as a user sees it: the app on the shipped nano in headless Chromium, the default level started (or
a start image uploaded, as "Start from: uploaded image" does: another game's first frame), RIGHT held then LEFT
held, the play surface shot every half second; one strip picture (RIGHT row above the LEFT row) and the page's own
FPS and keypress-to-frame report.
    python configs/nano-v2/motion-lab/browser_strip.py OUT.png [START.png]
    python -c "from PIL import Image; from core.games import first_frame; \
        Image.fromarray(first_frame('maze', 200039)).save('maze.png')"  # a held-out level's first frame
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from core.games.web import CHROMIUM_ARGS
from core.play.browser_bench import free_port, stop, wait_until_served

SHOTS, EVERY_MS = 5, 500


def main():
    out = Path(sys.argv[1])
    port = free_port()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--threads", "1"], stdout=subprocess.DEVNULL)
    shots = tempfile.mkdtemp()
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_served(app, url, timeout=180)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url, wait_until="load")
            page.wait_for_selector("#pw-start", timeout=120_000)
            if len(sys.argv) > 2:  # the Game dropdown does not take playwright's fill or option clicks; an upload does
                page.get_by_text("uploaded image", exact=True).first.click()
                page.locator("input[type=file]").first.set_input_files(sys.argv[2])
                page.wait_for_timeout(3000)
            page.click("#pw-start")
            page.wait_for_selector("#pw-surface img", timeout=120_000)
            page.locator("body").click(position={"x": 5, "y": 5})
            rows = []
            for key in ("ArrowRight", "ArrowLeft"):
                page.keyboard.down(key)
                row = []
                for i in range(SHOTS):
                    page.wait_for_timeout(EVERY_MS)
                    path = f"{shots}/{key}-{i}.png"
                    page.locator("#pw-surface img").first.screenshot(path=path)
                    row.append(Image.open(path).convert("RGB").resize((256, 256)))
                page.keyboard.up(key)
                rows.append(row)
            report = page.evaluate("window.__pocketworld.report()")
            browser.close()
    finally:
        stop(app)
    strip = Image.new("RGB", (256 * SHOTS, 256 * len(rows)))
    for r, row in enumerate(rows):
        for c, shot in enumerate(row):
            strip.paste(shot, (256 * c, 256 * r))
    strip.save(out)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
