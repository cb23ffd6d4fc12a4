"""The `pocketworld` command line: one entry point, one module per group of subcommands.

Each module in COMMAND_MODULES has `register(commands, benches)`, adding its subcommands to
`pocketworld ...` and its benchmarks to `pocketworld bench ...`. Handlers import heavy
libraries (torch, numpy) themselves so that `pocketworld --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "core.cli.model",  # zoo, bench play
    "core.cli.data",  # games, collect, preview, bench games
    "core.cli.train",  # train STAGE, plot, bench train
    "finetune.cli",  # ingest, finetune, push, hub list|info|pull
    "core.cli.play",  # play (the browser app), bench sessions
    "core.cli.evaluate",  # evaluate, idm train
    "core.cli.ship",  # ship (a trained model into the zoo)
    "core.cli.control",  # bench control (the controllability lab)
    "core.cli.sprites",  # sprites (a model's sprite memory)
)


# The modules of pyproject's optional extras that commands import when they run: a command whose extra is not
# installed says which one to install instead of ending in a traceback.
EXTRA_MODULES = {
    **dict.fromkeys(("accelerate", "tensorboard", "peft", "matplotlib", "av"), "train"),
    **dict.fromkeys(("gradio", "websockets", "starlette", "uvicorn", "fastapi"), "app"),
}


class UsageError(Exception):
    """A user-caused problem: printed as one line, exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pocketworld", description="PocketWorld: a small, fast, open world model for 2D games."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser("bench", help="speed benchmarks (print a table, optionally write JSON)")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real import error inside an existing module
                raise
            continue
        module.register(commands, benches)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ModuleNotFoundError as err:
        extra = EXTRA_MODULES.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"pocketworld {args.command}: error: it needs {err.name}, which comes with PocketWorld's {extra} extra: "
            f"pip install 'pocketworld[{extra}]' (from a checkout: pip install -e '.[{extra}]')",
            file=sys.stderr,
        )
        return 2
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"pocketworld {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
