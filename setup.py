"""Build hook: a wheel also carries the files the code reads beside it, which live outside the package.

The repository keeps the zoo's shipped weights in `zoo/` and the model card templates in `model_cards/`
(where users of a clone find and edit them); the package finds them there through core/paths.py. A wheel
(`pip install .`, `pip install git+...` on a Hugging Face Space) has no repository beside it, so they are
copied into it as `core/package_data/`, where core/paths.py looks in an installed package. Everything
else about the build is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# checkout folder -> folder inside the built package; only variants whose weights are committed (nano)
PACKAGE_DATA = {"zoo/nano": "core/package_data/zoo/nano", "model_cards": "core/package_data/model_cards"}


class BuildPyWithPackageData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout and reads the folders themselves
        for source, target in PACKAGE_DATA.items():
            shutil.copytree(ROOT / source, Path(self.build_lib) / target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithPackageData})
