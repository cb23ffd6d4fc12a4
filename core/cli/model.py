"""`pocketworld zoo` and `pocketworld bench play`: what the zoo holds and how fast it plays."""

from __future__ import annotations

import json


def register(commands, benches) -> None:
    zoo = commands.add_parser("zoo", help="list the model zoo: parameters per part and whether weights are present")
    zoo.add_argument("--json", action="store_true", help="print JSON (one object per variant) instead of a table")
    zoo.set_defaults(func=run_zoo)

    play = benches.add_parser("play", help="frames/s, keypress-to-frame latency and peak memory of 256x256 play")
    play.add_argument("--variant", default="nano", help="zoo variant to time (random weights; default: nano)")
    play.add_argument("--steps", type=int, default=100, help="timed play steps (default: 100)")
    play.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    play.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    play.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                      help="compute precision (default: fp32; bf16 is slower on CPUs without AMX)")
    play.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    play.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH")
    play.add_argument("--profile", action="store_true",
                      help="also print where a step's time goes (dynamics / sampling / decoder, top operators)")
    play.set_defaults(func=run_bench_play)


def run_zoo(args) -> int:
    from core.zoo import describe_all
    rows = describe_all()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'variant':<8} {'total':>9} {'tokenizer':>10} {'dynamics':>9} {'decoder':>9}  weights")
    for row in rows:
        weights = "present" if row["weights_available"] else "not present (see README: training)"
        print(f"{row['name']:<8} {_millions(row['params_total']):>9} {_millions(row['params_tokenizer']):>10} "
              f"{_millions(row['params_dynamics']):>9} {_millions(row['params_decoder']):>9}  {weights}")
    return 0


def run_bench_play(args) -> int:
    from core.bench import bench_play, write_json
    from core.config import zoo_config
    zoo_config(args.variant)  # an unknown variant fails before any work
    result = bench_play(args.variant, steps=args.steps, threads=args.threads, precision=args.precision,
                        warmup=args.warmup, device=args.device)
    print(f"{'variant':<8} {'precision':<9} {'threads':>7} {'fps':>7} {'p50 ms':>8} {'p95 ms':>8} {'peak RSS MB':>11}")
    print(f"{result.variant:<8} {result.precision:<9} {result.threads:>7} {result.fps:>7.2f} "
          f"{result.latency_ms_p50:>8.1f} {result.latency_ms_p95:>8.1f} {result.peak_rss_mb:>11.0f}")
    if args.json:
        write_json(result, args.json)
    if args.profile:
        from core.bench import profile_play
        print()
        print(profile_play(args.variant, threads=args.threads, precision=args.precision, device=args.device))
    return 0


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M"
