"""Where the files PocketWorld reads beside its code live: the zoo's weights and the model card templates.

The one place that answers it. In a source checkout they are the repository's own `zoo/` and
`model_cards/`, the folders a user edits and `pocketworld ship` writes into. A wheel (`pip install .`,
or a Hugging Face Space installing from git) has no checkout beside it, so setup.py copies them into
the package as `core/package_data/` and they are read from there. An environment variable points
either one elsewhere:

- `POCKETWORLD_ZOO`: a folder of `<variant>/config.json + model.safetensors` (e.g. a shared cache);
- `POCKETWORLD_CARD_TEMPLATES`: a folder of the card templates (`zoo.md`, `finetune.md`).

The app itself is a module (`core.play.app`), so it needs no path: the repository's `app.py` and each
Space's `app.py` only call it.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent  # the repository root, when the package runs from a checkout (editable install)
PACKAGE_DATA = PACKAGE / "package_data"  # what setup.py copies into a wheel: zoo/nano and model_cards
ZOO_VARIABLE = "POCKETWORLD_ZOO"
TEMPLATES_VARIABLE = "POCKETWORLD_CARD_TEMPLATES"


def in_checkout() -> bool:
    """Whether the package runs from a source checkout, not from a wheel installed into site-packages."""
    return (CHECKOUT / "pyproject.toml").is_file()


def _resolve(variable: str, folder: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable])
    return (CHECKOUT if in_checkout() else PACKAGE_DATA) / folder


def zoo_dir() -> Path:
    """The folder holding one `<variant>/` per zoo variant with weights."""
    return _resolve(ZOO_VARIABLE, "zoo")


def card_templates_dir() -> Path:
    """The folder holding the Jinja model card templates (finetune/cards.py renders them)."""
    return _resolve(TEMPLATES_VARIABLE, "model_cards")
