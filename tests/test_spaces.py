"""The Hugging Face Space folders: every zoo variant has one, with front matter the Spaces runtime
accepts (a Gradio SDK version our package accepts, the same for every Space; app file, known
hardware), a pip requirements file that installs our torch and never overrides the SDK's Gradio, and
an app.py that plays its own variant. A Space folder runs as the Hub runs it: alone in a directory,
`python app.py` with PocketWorld installed as a wheel, on the address and port the Hub sets."""

import ast
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import gradio
import pytest
import yaml
from huggingface_hub import SpaceHardware
from packaging.requirements import Requirement
from packaging.version import Version

from core.config import ZOO
from core.play.browser_bench import free_port, stop, wait_until_served
from tests.installed import clean_env

SPACES = Path(__file__).resolve().parents[1] / "spaces"
PYPROJECT = SPACES.parent / "pyproject.toml"


def gradio_requirement() -> Requirement:
    """The Gradio releases our app accepts, as pyproject.toml's [app] extra declares them."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    app = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["app"]
    return next(r for r in map(Requirement, app) if r.name == "gradio")


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} must start with YAML front matter"
    return yaml.safe_load(text.split("---", 2)[1])


def test_spaces_is_not_a_package_and_covers_the_zoo():
    assert not (SPACES / "__init__.py").exists()
    assert sorted(p.name for p in SPACES.iterdir() if p.is_dir()) == sorted(ZOO)


@pytest.mark.parametrize("variant", sorted(ZOO))
def test_space_app_plays_its_own_variant(variant):
    """The Space's app file names its variant and hands it to the app's own entry point."""
    assert sorted(p.name for p in (SPACES / variant).iterdir()) == ["README.md", "app.py", "requirements.txt"]
    tree = ast.parse((SPACES / variant / "app.py").read_text(encoding="utf-8"))
    names = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert ast.literal_eval(names["VARIANT"]) == variant
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert ("core.play.app", "main") in {(node.module, alias.name) for node in imports for alias in node.names}


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
    assert requirements["pocketworld"].extras == {"app"}  # the app's extra: gradio's companions and training
    cpu_wheel = "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert (cpu_wheel in options) == (variant == "nano")


def start_space(variant: str, python: Path, root: Path) -> tuple[subprocess.Popen, str, Path]:
    """`python app.py` in a directory holding exactly the Space's files, with the variables the Hub sets
    (GRADIO_SERVER_NAME/PORT; 127.0.0.1 here, 0.0.0.0 there) and the app's writable folders in `root`."""
    space = root / variant
    shutil.copytree(SPACES / variant, space)
    port, log = free_port(), root / f"{variant}.log"
    env = clean_env(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        POCKETWORLD_DATA=str(root / "data" / variant),
        POCKETWORLD_REGISTRY=str(root / "registry" / variant),
        OMP_NUM_THREADS="1",
    )
    with open(log, "w") as out:
        app = subprocess.Popen([python, "app.py"], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT)
    return app, f"http://127.0.0.1:{port}/", log


def page_component(url: str, **props) -> dict:
    """The first component of the served page whose props include `props` (Gradio's /config)."""
    config = json.loads(urllib.request.urlopen(url + "config", timeout=10).read())
    return next(c["props"] for c in config["components"] if props.items() <= c.get("props", {}).items())


@pytest.mark.slow
def test_spaces_run_as_the_hub_runs_them_nano_plays_and_tiny_says_it_has_no_weights(installed_python, tmp_path):
    from gradio_client import Client

    apps = {variant: start_space(variant, installed_python, tmp_path) for variant in ("nano", "tiny")}
    try:
        for app, url, log in apps.values():
            try:
                wait_until_served(app, url, timeout=120)
            except (RuntimeError, TimeoutError) as err:
                pytest.fail(f"{err}:\n{log.read_text()}")
        _, nano_url, nano_log = apps["nano"]
        assert page_component(nano_url, label="Model")["value"] == "nano"
        assert re.search(r"\* Model: nano, weights from .*package_data/zoo/nano", nano_log.read_text())
        surface, _ = Client(nano_url, verbose=False).predict(
            "nano", "game level", "maze", 0, None, api_name="/start_session"
        )
        assert '<img alt="game frame"' in surface and "· nano</span>" in surface  # a dreamed frame, nano's HUD

        _, tiny_url, tiny_log = apps["tiny"]
        assert page_component(tiny_url, label="Model")["value"] == "tiny"
        assert "tiny has no trained weights yet" in page_component(tiny_url, elem_id="pw-surface")["value"]
        assert "* Model: tiny has no trained weights yet" in tiny_log.read_text()
    finally:
        for app, _, _ in apps.values():
            stop(app)
