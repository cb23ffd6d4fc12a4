"""Shared test settings: a fixed, small thread count so timings and results do not depend on
what else the machine runs, and tiny model configs so every model test runs in seconds."""

import pytest
import torch

from core.config import DecoderConfig, DynamicsConfig, TokenizerConfig, WorldModelConfig

torch.set_num_threads(2)


def tiny_config(**dynamics) -> WorldModelConfig:
    """A full world model small enough for a test: every part real, every width tiny."""
    dyn = dict(d_model=32, n_layers=2, n_heads=2, d_state=8, expand=1, headdim=16, mlp_ratio=2.0, chunk_size=4)
    dyn.update(dynamics)
    return WorldModelConfig(
        name="test-tiny",
        tokenizer=TokenizerConfig(channels=(8, 8, 16, 16), decoder_channels=(16, 16, 8, 8), expand_ratio=2),
        dynamics=DynamicsConfig(**dyn),
        decoder=DecoderConfig(channels=(8, 8, 8, 16, 16), token_dim=8),
    )


@pytest.fixture
def tiny() -> WorldModelConfig:
    return tiny_config()


@pytest.fixture(scope="session")
def installed_python(tmp_path_factory):
    """The python of a fresh venv with PocketWorld installed as a wheel (tests/installed.py); built once."""
    pytest.importorskip("setuptools")  # the wheel is built without build isolation, with this setuptools
    from tests.installed import install_non_editable

    return install_non_editable(tmp_path_factory.mktemp("installed"))
