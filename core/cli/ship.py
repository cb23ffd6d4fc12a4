"""`pocketworld ship`: put a trained model into the zoo with its card, previews and curves."""

from __future__ import annotations


def register(commands, benches) -> None:
    ship = commands.add_parser("ship", help="put a trained model into zoo/<variant>/ (fp16 weights, card, previews)")
    ship.add_argument("model", help="a trained model folder (a run's model/ export)")
    ship.add_argument("--variant", default="nano", help="the zoo variant it is (default: nano)")
    ship.add_argument(
        "--report",
        nargs="+",
        help="its `pocketworld evaluate --report` folder, or one per game (a bars column each, eval/GAME/): "
        "the card's numbers and previews",
    )
    ship.add_argument(
        "--evaluate-command", nargs="+", help="the evaluate command line(s) that made --report, quoted in the card"
    )
    ship.add_argument("--runs", nargs="*", default=[], help="its training run folders: budget table and curves")
    ship.add_argument(
        "--history",
        help="an earlier zoo folder this model's training continues (its training.json and curves come first): "
        "run folders do not outlive the machine they ran on",
    )
    ship.add_argument("--bench", help="a `pocketworld bench play --json` file of it: the card's speed table")
    ship.add_argument("--out", help="destination (default: the zoo folder of --variant)")
    ship.add_argument("--notes", help="a markdown file appended to the card (limitations, how the test data was made)")
    ship.add_argument(
        "--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="weight storage (default: fp16)"
    )
    ship.set_defaults(func=run_ship)


def run_ship(args) -> int:
    from core.ship import ShipConfig, ship

    out = ship(
        ShipConfig(
            model=args.model,
            variant=args.variant,
            report=args.report,
            evaluate_command=args.evaluate_command,
            runs=args.runs,
            history=args.history,
            bench=args.bench,
            out=args.out,
            dtype=args.dtype,
            notes=args.notes,
        )
    )
    print(f"shipped {args.model} as {args.variant} into {out}")
    return 0
