"""pyproject's extras are true: without [train] and [app] installed, `import core` loads and plays a model, the
command line builds, and a command that needs an extra says which one; without [app], training imports. Each
check runs in a fresh interpreter whose import system refuses those extras' modules."""

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
GRADIO_SERVER = {"gradio_client", "starlette", "fastapi", "uvicorn"}  # what gradio brings; absent without [app]

BLOCK_IMPORTS = """
import importlib.abc, sys

BLOCKED = set(sys.argv[1].split(","))


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed in this test)", name=name)


sys.meta_path.insert(0, Refuse())
"""

CORE_PLAYS = """
import contextlib, io, sys
import core.world_model, core.session, core.zoo, finetune.cards
from core.cli import main

session = core.session.WorldSession(core.zoo.load("nano"))
session.reset(seed=0)
assert session.step("RIGHT").shape == (256, 256, 3)
finetune.cards.check_card(finetune.cards.zoo_card("nano", "pocketworld/pocketworld-nano", {"total": 1}), finetune=False)
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["zoo"]) == 0
err = io.StringIO()
with contextlib.redirect_stderr(err):
    assert main(["plot", sys.argv[2], "--out", sys.argv[2] + "/curves.png"]) == 2
assert "pip install 'pocketworld[train]'" in err.getvalue(), err.getvalue()
print("core played nano")
"""

TRAINING_IMPORTS = """
import importlib
from core.train.config import STAGES

for name in ["core.train.loop", *(f"core.train.{stage}" for stage in STAGES), "finetune.train", "finetune.registry"]:
    importlib.import_module(name)
importlib.import_module("core.evaluation.report")
print("training imported")
"""


def extra_modules(*extras: str) -> set[str]:
    """The top-level modules of pyproject's `extras` (each of ours imports as its distribution is named)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    optional = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {Requirement(line).name for extra in extras for line in optional[extra]}
    return {name.replace("-", "_") for name in names} - {"pocketworld"}


def run_blocked(blocked: set[str], code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_IMPORTS + code, ",".join(sorted(blocked)), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_extras_hold_what_the_core_install_leaves_out():
    assert {"gradio", "websockets"} <= extra_modules("app")
    assert {"accelerate", "tensorboard", "peft", "matplotlib", "av"} <= extra_modules("train")
    tomllib = pytest.importorskip("tomllib")
    core = {Requirement(line).name for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]}
    assert not core & (extra_modules("app", "train") | GRADIO_SERVER)


@pytest.mark.slow
def test_core_plays_nano_and_the_cli_runs_without_the_train_and_app_extras(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "train", "loss": 1.0}\n')
    blocked = extra_modules("app", "train") | GRADIO_SERVER
    assert "core played nano" in run_blocked(blocked, CORE_PLAYS, str(tmp_path))


@pytest.mark.slow
def test_training_imports_without_the_app_extra():
    assert "training imported" in run_blocked(extra_modules("app") | GRADIO_SERVER, TRAINING_IMPORTS)
