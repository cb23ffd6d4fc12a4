"""Data commands: `games`, `collect`, `record`, `preview`, and the `bench games|encoding|agents` benchmarks."""

from __future__ import annotations

import json
from pathlib import Path


def register(commands, benches) -> None:
    games = commands.add_parser("games", help="list the games and the agents that can play them")
    games.add_argument("--json", action="store_true", help="print JSON instead of a table")
    games.set_defaults(func=cmd_games)

    collect = commands.add_parser("collect", help="record play into WebDataset shards")
    collect.add_argument("--game", required=True, help="a game from `pocketworld games` (or gym:/atari:/web:...)")
    collect.add_argument(
        "--agent", default="random", help="random, held (random keys held 1-8 frames), scripted or rl (default: random)"
    )
    collect.add_argument(
        "--frames", type=int, required=True, help="frames to write: exactly this many, all passing the quality filter"
    )
    collect.add_argument("--out", required=True, help="an empty or new folder for the shards")
    collect.add_argument("--seed", type=int, default=0, help="first level seed (default: 0)")
    collect.add_argument("--resume", action="store_true", help="continue an interrupted collection in --out")
    collect.add_argument("--num-envs", type=int, default=8, help="games played side by side (default: 8)")
    collect.add_argument("--chunk", type=int, default=128, help="frames per shard sample (default: 128)")
    collect.add_argument("--split", choices=("train", "val", "test"), help="only play levels of this split")
    collect.add_argument("--tileset", help="tileset JSON to draw our games with (see core/games/art.py)")
    collect.add_argument("--max-steps", type=int, default=1800, help="episode time limit in frames (default: 1800)")
    collect.add_argument("--policy", help="rl agent: a saved policy (default: train one, saved in --out)")
    collect.add_argument("--rl-steps", type=int, default=200_000, help="rl agent: training steps (default: 200000)")
    collect.add_argument("--shard-mb", type=int, default=256, help="shard size in MB (default: 256)")
    collect.add_argument("--no-progress", action="store_true", help="no progress bar")
    collect.set_defaults(func=cmd_collect)

    record = commands.add_parser(
        "record",
        help="play a game into a video + key log, as a developer exports play from their engine (for `ingest`)",
    )
    record.add_argument("--game", default="bricks", help="a game from `pocketworld games` (default: bricks, held out)")
    record.add_argument("--agent", default="scripted", help="scripted, held, random or rl (default: scripted)")
    record.add_argument("--minutes", type=float, default=10.0, help="minutes of play at 30 FPS (default: 10)")
    record.add_argument(
        "--split", choices=("train", "val", "test"), default="train", help="play levels of this split (default: train)"
    )
    record.add_argument("--seed", type=int, default=0, help="first level seed (default: 0)")
    record.add_argument("--out", required=True, help="the video to write: a new .mp4 or .webm")
    record.add_argument("--keys", required=True, help="the key log to write: a new .csv (frame,keys) or .json")
    record.add_argument("--max-steps", type=int, default=1800, help="a level's time limit in frames (default: 1800)")
    record.add_argument("--tileset", help="tileset JSON to draw our games with (see core/games/art.py)")
    record.add_argument("--no-progress", action="store_true", help="no progress bar")
    record.set_defaults(func=cmd_record)

    preview = commands.add_parser("preview", help="write a GIF/MP4 of a recorded sample with its actions drawn on")
    preview.add_argument("source", help="a .tar shard or a folder of shards")
    preview.add_argument("--out", required=True, help="output .gif, .mp4 or .webm")
    preview.add_argument("--sample", type=int, default=0, help="which sample, counting across shards (default: 0)")
    preview.add_argument("--max-frames", type=int, default=300, help="frames to include at most (default: 300)")
    preview.set_defaults(func=cmd_preview)

    bench = benches.add_parser("games", help="frames/s per game at 256x256 including rendering (one process)")
    bench.add_argument("--num-envs", type=int, default=32, help="envs stepped together (default: 32)")
    bench.add_argument("--steps", type=int, default=150, help="steps per timed run (default: 150)")
    bench.add_argument("--json", help="also write the rows to this JSON file")
    bench.set_defaults(func=cmd_bench_games)

    encoding = benches.add_parser("encoding", help="bytes/frame and encode/decode frames/s of frame encodings")
    encoding.add_argument("--frames", type=int, default=128, help="frames per game to encode (default: 128)")
    encoding.add_argument("--json", help="also write the rows to this JSON file")
    encoding.set_defaults(func=cmd_bench_encoding)

    agents = benches.add_parser("agents", help="level coverage and action histogram per agent and game")
    agents.add_argument("--episodes", type=int, default=16, help="episodes per agent and game (default: 16)")
    agents.add_argument("--rl-steps", type=int, default=100_000, help="RL training steps per game (default: 100000)")
    agents.add_argument("--games", default="platformer,maze,shooter,bricks", help="comma-separated games")
    agents.add_argument("--json", help="also write the rows to this JSON file")
    agents.set_defaults(func=cmd_bench_agents)


def _positive(**values) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def _dump(rows, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=2))
        print(f"wrote {path}")


def cmd_games(args) -> int:
    from core.agents import AGENTS, agents_for
    from core.games import GAMES
    from core.games.gym_adapter import ATARI_TRAIN

    rows = [
        {"game": name, "agents": ", ".join(agents_for(name)), "description": cls.description}
        for name, cls in GAMES.items()
    ]
    rows += [
        {
            "game": "gym:<ENV_ID>",
            "agents": "random",
            "description": "any gymnasium env with rgb_array rendering "
            "and a Discrete action space, e.g. gym:CartPole-v1",
        },
        {
            "game": "atari:<NAME>",
            "agents": "random",
            "description": "Atari via ale-py (pip install "
            f"'pocketworld[atari]'); trainable: {', '.join(ATARI_TRAIN)}; others are recorded as split 'unseen'",
        },
        {
            "game": "web:<PAGE>",
            "agents": "random",
            "description": "an HTML5 canvas game (.html file or "
            "http://localhost URL) in headless Chromium (pip install 'pocketworld[web]' + Debian chromium)",
        },
    ]
    if args.json:
        print(json.dumps({"games": rows, "agents": AGENTS}, indent=2))
        return 0
    print(_table(rows, ["game", "agents", "description"]))
    print()
    print(_table([{"agent": k, "description": v} for k, v in AGENTS.items()], ["agent", "description"]))
    return 0


def cmd_collect(args) -> int:
    from core.agents import AGENTS
    from core.data.recorder import CollectConfig, Collector
    from core.games import check_game

    check_game(args.game)
    if args.agent not in AGENTS:
        raise ValueError(f"unknown agent {args.agent!r}; valid agents: {', '.join(AGENTS)}")
    _positive(
        frames=args.frames,
        num_envs=args.num_envs,
        chunk=args.chunk,
        max_steps=args.max_steps,
        rl_steps=args.rl_steps,
        shard_mb=args.shard_mb,
    )
    config = CollectConfig(
        game=args.game,
        agent=args.agent,
        frames=args.frames,
        seed=args.seed,
        num_envs=1 if args.game.startswith("web:") else args.num_envs,
        chunk=args.chunk,
        split=args.split,
        shard_mb=args.shard_mb,
        tileset=args.tileset,
        max_steps=args.max_steps,
        policy=args.policy,
        rl_steps=args.rl_steps,
    )
    summary = Collector(config, args.out, resume=args.resume, progress=not args.no_progress).run()
    quality = summary["quality"]
    dropped = ", ".join(f"{k} {v}" for k, v in quality["dropped"].items())
    print(
        f"wrote {summary['frames_written']} frames in {summary['shards']} shard(s) to {args.out} "
        f"({summary['bytes_per_frame']:.0f} bytes/frame, {summary['frames_per_second']:.0f} frames/s)"
    )
    print(
        f"quality: {quality['frames_kept']}/{quality['frames_in']} frames played passed the filter; dropped: {dropped}"
    )
    print(f"episodes finished: {summary['episodes']}; mean coverage {summary['coverage_mean']}")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def cmd_record(args) -> int:
    from core.data.export import ExportConfig, export_play
    from core.games import FPS, check_game

    check_game(args.game)
    _positive(minutes=args.minutes, max_steps=args.max_steps)
    frames = round(args.minutes * 60 * FPS)
    if frames < 1:
        raise ValueError(f"--minutes {args.minutes} is less than one frame at {FPS} FPS")
    config = ExportConfig(
        game=args.game,
        agent=args.agent,
        frames=frames,
        split=args.split,
        seed=args.seed,
        max_steps=args.max_steps,
        tileset=args.tileset,
    )
    summary = export_play(config, args.out, args.keys, progress=not args.no_progress)
    print(
        f"wrote {summary['frames']} frames ({summary['minutes']} min) of {args.game} played by {args.agent} "
        f"to {args.out} ({summary['video_bytes'] / 2**20:.1f} MiB) and {args.keys}, "
        f"{summary['frames_per_second']:.0f} frames/s"
    )
    ended = ", ".join(f"{k} {v}" for k, v in summary["levels_ended"].items()) or "none"
    seeds = summary["seeds"]
    print(f"{summary['levels']} {args.split} level(s), seeds {seeds[0]}..{seeds[-1]}; levels ended: {ended}")
    held_out = " --split test" if args.split == "test" else ""  # a test-split recording is for judging a fine-tune
    print(
        f"next: pocketworld ingest {args.out} --actions {args.keys} --game {args.game}{held_out} "
        f"--out shards/my-{args.game}{'-test' if held_out else ''}"
    )
    return 0


def cmd_preview(args) -> int:
    from core.data.preview import write_preview

    result = write_preview(args.source, args.out, sample=args.sample, max_frames=args.max_frames)
    print(f"wrote {result['out']}: {result['frames']} frames of {result['game']} (seed {result['seed']})")
    return 0


def cmd_bench_games(args) -> int:
    from core.games.bench import bench_games

    _positive(num_envs=args.num_envs, steps=args.steps)
    rows = bench_games(num_envs=args.num_envs, steps=args.steps)
    print(_table(rows, ["game", "num_envs", "frames_per_second"]))
    print("(one process, NumPy on one core; 256x256 RGB frames, rendering and level resets included)")
    _dump(rows, args.json)
    return 0


def cmd_bench_encoding(args) -> int:
    import numpy as np

    from core.agents import make_agent
    from core.data.encoding import measure
    from core.games import GAMES, make_game

    _positive(frames=args.frames)
    rows = []
    for name in GAMES:
        game = make_game(name, num_envs=1)
        agent = make_agent("scripted", game, seed=0)
        frames, seed = [game.reset([0])[0]], 1
        while len(frames) < args.frames:
            step, done = game.step(agent.act(game))
            frames.append(step[0])
            if done[0]:
                frames.append(game.reset([seed])[0])
                seed += 1
        for row in measure(np.stack(frames[: args.frames])):
            rows.append({"game": name, **{k: round(v) if isinstance(v, float) else v for k, v in row.items()}})
    print(_table(rows, ["game", "encoding", "bytes_per_frame", "encode_fps", "decode_fps"]))
    _dump(rows, args.json)
    return 0


def cmd_bench_agents(args) -> int:
    import torch

    from core.agents.evaluate import evaluate
    from core.agents.random_play import RandomAgent
    from core.agents.rl import PPOAgent
    from core.agents.scripted import SCRIPTED

    _positive(episodes=args.episodes, rl_steps=args.rl_steps)
    torch.set_num_threads(1)
    rows = []
    for game in args.games.split(","):
        for agent in (
            RandomAgent(8, seed=0),
            SCRIPTED[game](8, seed=0),
            PPOAgent.train(game, steps=args.rl_steps, seed=0)[0].with_envs(8),
        ):
            row = evaluate(game, agent, episodes=args.episodes)
            row["action_histogram"] = " ".join(f"{p:.2f}" for p in row["action_histogram"])
            row["coverage"] = f"{row['coverage_mean']:.1f} ± {row['coverage_std']:.1f}"
            rows.append(row)
    print(_table(rows, ["game", "agent", "coverage", "outcomes", "action_histogram"]))
    print("(coverage: distinct regions visited per episode; histogram over action ids 0..17)")
    _dump(rows, args.json)
    return 0
