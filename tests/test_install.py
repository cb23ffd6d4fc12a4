"""A non-editable install (`pip install .`, as a Hugging Face Space installs from git) works away from the
checkout: the package finds the shipped nano weights and the card templates inside itself (core/paths.py,
setup.py), loads nano and plays it, and carries the app module."""

import subprocess

import pytest

from tests.installed import clean_env

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


@pytest.mark.slow
def test_a_non_editable_install_plays_nano_and_renders_a_card_away_from_the_checkout(installed_python, tmp_path):
    played = subprocess.run(
        [installed_python, "-c", PLAY_NANO], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert played.returncode == 0, played.stderr
    assert "played nano from" in played.stdout and "package_data" in played.stdout
