"""PocketWorld installed as a wheel into a fresh venv, as `pip install .` or a Hugging Face Space installs it.

Offline and fast: the wheel is built from a copy of the build's inputs without build isolation (with the
setuptools installed here), and its dependencies (torch, gradio, ...) come from the environment running
the tests. `--system-site-packages` would give the base interpreter's packages, not a venv's, so this
environment's site-packages goes on the new venv's path through a .pth line instead; as a plain path line,
the .pth files inside it (this checkout's editable-install finder) are not run, so `core` comes from the
wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the build reads: the package sources, its metadata, and the folders setup.py copies into the wheel.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "core", "finetune"]
BUILD_INPUTS += ["zoo/nano", "model_cards"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PocketWorld's variables (they would point the install at the checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETWORLD_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def copy_build_inputs(out: Path) -> None:
    for name in BUILD_INPUTS:
        source, target = REPO / name, out / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def install_non_editable(root: Path) -> Path:
    """Build and install PocketWorld into a new venv under `root`; returns the venv's python."""
    source, venv = root / "source", root / "venv"
    copy_build_inputs(source)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True, capture_output=True
    ).stdout.decode()
    Path(new_site.strip(), "outer.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # --ignore-installed: pip never tries to uninstall this environment's own (editable) PocketWorld
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--ignore-installed"]
    subprocess.run([*pip, "--no-build-isolation", str(source)], check=True, env=clean_env(), cwd=root)
    return python
