"""A non-editable install (`pip install .`, as a Hugging Face Space installs from git) works away from the
checkout: the package finds the shipped nano weights and the card templates inside itself (core/paths.py,
setup.py), loads nano and plays it, and serves the app module. Offline: torch and the other dependencies
come from the environment running the tests, and the wheel is built without build isolation."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the build reads: the package sources, its metadata, and the folders setup.py copies into the wheel.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "core", "finetune"]
BUILD_INPUTS += ["zoo/nano", "model_cards"]

PLAY_NANO = """
import pathlib, sys
import core, core.zoo, finetune.cards
from core.session import WorldSession
from core.play.app import build_app  # the app module ships in the package

assert pathlib.Path(core.__file__).is_relative_to(sys.prefix), core.__file__  # the new venv's copy
assert core.zoo.weights_dir("nano").is_relative_to(pathlib.Path(core.__file__).parent), core.zoo.weights_dir("nano")
session = WorldSession(core.zoo.load("nano"))
frame = session.reset(seed=0)
for action in ("RIGHT", "LEFT+FIRE", "NOOP"):
    frame = session.step(action)
assert frame.shape == (256, 256, 3), frame.shape
card = finetune.cards.zoo_card("nano", "pocketworld/pocketworld-nano", {"total": 5_200_000})
finetune.cards.check_card(card, finetune=False)
print("played nano from", core.zoo.weights_dir("nano"))
"""


def copy_build_inputs(out: Path) -> None:
    for name in BUILD_INPUTS:
        source, target = REPO / name, out / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.mark.slow
def test_a_non_editable_install_plays_nano_and_renders_a_card_away_from_the_checkout(tmp_path):
    pytest.importorskip("setuptools")  # --no-build-isolation builds with the setuptools installed here
    source, venv, elsewhere = tmp_path / "source", tmp_path / "venv", tmp_path / "elsewhere"
    copy_build_inputs(source)
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment's site-packages. `--system-site-packages` would give the
    # base interpreter's, not a venv's, so its folder goes on the path with a .pth line instead; as a plain
    # path line, the .pth files inside it (this checkout's editable-install finder) are not run.
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True, capture_output=True
    ).stdout.decode()
    Path(new_site.strip(), "outer.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETWORLD_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--ignore-installed"]
    subprocess.run([*pip, "--no-build-isolation", str(source)], check=True, env=env, cwd=elsewhere)

    played = subprocess.run(
        [python, "-c", PLAY_NANO], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert played.returncode == 0, played.stderr
    assert "played nano from" in played.stdout and "package_data" in played.stdout
