"""The Hugging Face Space files: every zoo variant has one, with front matter the Spaces runtime
accepts (a Gradio SDK version our package accepts, the same for every Space; app file, known
hardware) and a pip requirements file that installs our torch and never overrides the SDK's Gradio."""

from pathlib import Path

import gradio
import pytest
import yaml
from huggingface_hub import SpaceHardware
from packaging.requirements import Requirement
from packaging.version import Version

from core.config import ZOO

SPACES = Path(__file__).resolve().parents[1] / "spaces"
PYPROJECT = SPACES.parent / "pyproject.toml"


def gradio_requirement() -> Requirement:
    """The Gradio releases our package accepts, as pyproject.toml declares them."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return next(r for r in map(Requirement, dependencies) if r.name == "gradio")


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} must start with YAML front matter"
    return yaml.safe_load(text.split("---", 2)[1])


def test_spaces_is_not_a_package_and_covers_the_zoo():
    assert not (SPACES / "__init__.py").exists()
    assert sorted(p.name for p in SPACES.iterdir() if p.is_dir()) == sorted(ZOO)


@pytest.mark.parametrize("variant", sorted(ZOO))
def test_space_front_matter(variant):
    meta = front_matter(SPACES / variant / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    # the Space runs the Gradio its sdk_version names: one our package accepts, as does the one we test with
    accepted = gradio_requirement().specifier
    assert Version(str(meta["sdk_version"])) in accepted and Version(gradio.__version__) in accepted
    assert meta["sdk_version"] == front_matter(SPACES / "nano" / "README.md")["sdk_version"]  # one pin for all
    assert meta["suggested_hardware"] in {h.value for h in SpaceHardware}
    assert (meta["suggested_hardware"] == "cpu-basic") == (variant == "nano")  # only nano is sized for CPUs
    assert len(meta["short_description"]) <= 60  # the Hub's limit
    assert meta["license"] == "mit" and "pocketworld" in meta["tags"]
    assert meta["models"] == [f"pocketworld/pocketworld-{variant}"]
    assert isinstance(meta["python_version"], str)  # unquoted 3.10 would parse as 3.1


@pytest.mark.parametrize("variant", sorted(ZOO))
def test_space_requirements(variant):
    lines = [line.strip() for line in (SPACES / variant / "requirements.txt").read_text().splitlines()]
    options = [line for line in lines if line.startswith("--")]
    requirements = {r.name: r for r in (Requirement(line) for line in lines if line and line[0] not in "#-")}
    assert str(requirements["torch"].specifier) == "==2.13.0"
    assert "gradio" not in requirements  # the Space installs Gradio from sdk_version; a second pin would fight it
    assert requirements["pocketworld"].url.startswith("git+https://")
    cpu_wheel = "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert (cpu_wheel in options) == (variant == "nano")
