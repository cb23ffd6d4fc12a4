"""`pocketworld zoo` and `pocketworld bench play`: what the zoo holds and how fast it plays."""

from __future__ import annotations

import json


def register(commands, benches) -> None:
    zoo = commands.add_parser("zoo", help="list the model zoo: parameters per part and whether weights are present")
    zoo.add_argument("--json", action="store_true", help="print JSON (one object per variant) instead of a table")
    zoo.set_defaults(func=run_zoo)

    play = benches.add_parser("play", help="frames/s, keypress-to-frame latency and peak memory of 256x256 play")
    play.add_argument(
        "--variant",
        default="nano",
        help="zoo variant to time (its trained weights where present, else random ones; default: nano)",
    )
    play.add_argument("--steps", type=int, default=100, help="timed play steps (default: 100)")
    play.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    play.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    play.add_argument(
        "--precision",
        default="fp32",
        help="engine(s) to time: fp32, bf16, int8 (CPU: torch dynamic quantization; CUDA: "
        "bitsandbytes), nf4 (CUDA), each optionally +onnx for the ONNX Runtime decoder "
        "(e.g. int8+onnx); a comma-separated list; or 'all' (default: fp32)",
    )
    play.add_argument(
        "--quality-steps",
        type=int,
        default=30,
        help="rollout length for psnr_vs_fp32 and token agreement (default: 30)",
    )
    play.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    play.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH")
    play.add_argument(
        "--profile",
        action="store_true",
        help="also print where a step's time goes (dynamics / sampling / decoder, top operators)",
    )
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
        print(
            f"{row['name']:<8} {_millions(row['params_total']):>9} {_millions(row['params_tokenizer']):>10} "
            f"{_millions(row['params_dynamics']):>9} {_millions(row['params_decoder']):>9}  {weights}"
        )
    return 0


def run_bench_play(args) -> int:
    from core.bench import bench_play, bench_play_many, engines_for, profile_play, write_json
    from core.config import zoo_config

    zoo_config(args.variant)  # an unknown variant or engine fails before any work
    engines = engines_for(args.precision, args.device)
    options = dict(
        steps=args.steps, threads=args.threads, warmup=args.warmup, device=args.device, quality_steps=args.quality_steps
    )
    if len(engines) == 1:
        results = [bench_play(args.variant, precision=engines[0], **options)]
    else:
        results = bench_play_many(args.variant, engines, progress=False, **options)
    print(
        f"{'variant':<8} {'precision':<10} {'threads':>7} {'fps':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'peak RSS MB':>11} {'PSNR vs fp32':>12} {'tokens =':>8} {'prepare s':>9}"
    )
    for r in results:
        psnr = "exact" if r.psnr_vs_fp32 is None else f"{r.psnr_vs_fp32:.1f} dB"
        tokens = "-" if r.token_agreement is None else f"{r.token_agreement:.1%}"
        print(
            f"{r.variant:<8} {r.precision:<10} {r.threads:>7} {r.fps:>7.2f} {r.latency_ms_p50:>8.1f} "
            f"{r.latency_ms_p95:>8.1f} {r.peak_rss_mb:>11.0f} {psnr:>12} {tokens:>8} {r.prepare_s:>9.1f}"
        )
    print(
        f"{results[0].weights} weights, quality over {args.quality_steps} steps vs the plain fp32 path, "
        f"{args.threads} torch threads, {results[0].device} ({results[0].cpu})"
    )
    if args.json:
        write_json(results[0] if len(results) == 1 else results, args.json)
    if args.profile:
        for engine in engines:
            print(f"\n{engine}:")
            print(profile_play(args.variant, threads=args.threads, precision=engine, device=args.device))
    return 0


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M"
