"""PocketWorld core: the world model (tokenizer, Mamba dynamics, frame decoder), games and data.

Importing this package is cheap and never touches CUDA or mamba_ssm; submodules load what
they need when they are used.
"""

__version__ = "0.1.0"
