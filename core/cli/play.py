"""`pocketworld play` (the browser app, core/play/app.py) and `pocketworld bench sessions` (several players at once).

The play options are declared here, light to import, and the app reuses them, so
`python app.py` and `pocketworld play` take the same options.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
from dataclasses import asdict
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860  # Gradio's own default
# Gradio's variables: its port hint names the port's, and a Hugging Face Space sets both (0.0.0.0, 7860)
HOST_VARIABLE = "GRADIO_SERVER_NAME"
PORT_VARIABLE = "GRADIO_SERVER_PORT"
IDMS_VARIABLE = "POCKETWORLD_IDMS"
# Leave a core to the browser showing the frames when it runs on the same machine (README, "How fast it plays").
DEFAULT_PLAY_THREADS = max(1, min(2, (os.cpu_count() or 2) - 1))


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    from core.play.page import LOOPS  # page, not stream: the stream needs the app's web server

    parser.add_argument(
        "--host",
        default=None,
        help=f"address to serve on (default: ${HOST_VARIABLE} if set, else {DEFAULT_HOST}; 0.0.0.0 to reach it "
        "from other machines)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to serve on (default: ${PORT_VARIABLE} if set, else {DEFAULT_PORT})",
    )
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--model", default=None, help="model picked when the page opens (default: nano if playable)")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_PLAY_THREADS,
        help="torch CPU threads (default: CPU cores - 1, at most 2: here %(default)s; the browser "
        "needs a core of its own: on 2 cores, 1 thread played 9.7 FPS in Chromium, 2 threads 7.1)",
    )
    parser.add_argument(
        "--step-concurrency",
        type=int,
        default=1,
        help="frames computed at once across all players (default: 1: players take turns, "
        "which on a small CPU beats threads fighting over its cores)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="websocket",
        help="how frames reach the page: websocket (a stream beside Gradio) or timer (a gr.Timer "
        "polling Gradio's queue); default: websocket",
    )
    parser.add_argument(
        "--idms",
        default=os.environ.get(IDMS_VARIABLE) or None,
        metavar="DIR",
        help="a folder of IDMs (`pocketworld idm train --out DIR/NAME`) the Fine-tune tab offers to propose the "
        f"keys of play uploaded without a key log (default: ${IDMS_VARIABLE}, else none)",
    )


def register(commands, benches) -> None:
    play = commands.add_parser("play", help="play in the browser: serve the app (default http://127.0.0.1:7860)")
    add_play_arguments(play)
    play.set_defaults(func=run_play)

    sessions = benches.add_parser("sessions", help="frames/s per session with N play sessions at once")
    sessions.add_argument("--n", default="1,2,4,8", help="session counts to run, comma-separated (default: 1,2,4,8)")
    sessions.add_argument("--variant", default="nano", help="zoo variant to time (random weights; default: nano)")
    sessions.add_argument("--seconds", type=float, default=10.0, help="how long each count runs (default: 10)")
    sessions.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    sessions.add_argument(
        "--step-concurrency",
        type=int,
        default=1,
        choices=[0, 1],
        help="1: steps take turns, as in the app's default; 0: all at once (default: 1)",
    )
    sessions.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    sessions.set_defaults(func=run_bench_sessions)

    browser = benches.add_parser(
        "browser", help="frames/s and keypress-to-frame latency as the page measures them, in headless Chromium"
    )
    browser.add_argument("--model", default="nano", help="model to play (a zoo variant with weights; default: nano)")
    browser.add_argument("--seconds", type=float, default=20.0, help="how long to play (default: 20)")
    browser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_PLAY_THREADS,
        help="the app's torch CPU threads (default: the app's, here %(default)s)",
    )
    browser.add_argument(
        "--loop",
        default="websocket",
        help="the app's frame loop: websocket, timer, or both "
        "(websocket,timer: one after the other); default: websocket",
    )
    browser.add_argument("--json", metavar="PATH", help="also write the result(s) as JSON to PATH")
    browser.set_defaults(func=run_bench_browser)


def play_host(host: str | None) -> str:
    """The address to serve on: --host, else $GRADIO_SERVER_NAME, else 127.0.0.1."""
    return host or os.environ.get(HOST_VARIABLE, "").strip() or DEFAULT_HOST


def play_port(port: int | None) -> int:
    """The port to serve on: --port, else $GRADIO_SERVER_PORT, else 7860; UsageError for a bad one."""
    from core.cli import UsageError

    where = "--port"
    if port is None:
        text = os.environ.get(PORT_VARIABLE, "").strip()
        if not text:
            return DEFAULT_PORT
        where = PORT_VARIABLE
        try:
            port = int(text)
        except ValueError:
            raise UsageError(f"{PORT_VARIABLE} must be a port number (1-65535), got {text!r}") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"{where} must be a port number (1-65535), got {port}")
    return port


def check_port_free(host: str, port: int) -> None:
    """UsageError naming the port when something already listens on it, before anything slow starts
    (Gradio's own error is a traceback that ends in a hint about launch())."""
    from core.cli import UsageError

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise UsageError(f"cannot serve on --host {host!r}: {err.strerror}") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closing port is free
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UsageError(port_taken_message(host, port)) from None
            raise UsageError(
                f"cannot serve on {host} port {port}: {err.strerror} (choose another --host or --port)"
            ) from None


def port_taken_message(host: str, port: int) -> str:
    other = port + 1 if port < 65535 else port - 1
    return (
        f"port {port} on {host} is taken (is the app already running?); choose another with --port {other} "
        f"or {PORT_VARIABLE}={other}"
    )


def run_play(args) -> int:
    from core.play.app import serve

    serve(args.host, args.port, args.share, args.model, args.threads, args.step_concurrency, args.loop, args.idms)
    return 0


def run_bench_sessions(args) -> int:
    from core.cli import UsageError
    from core.config import zoo_config

    try:
        counts = [int(n) for n in args.n.split(",")]
    except ValueError:
        raise UsageError(f"--n takes session counts like 1,2,4,8, got {args.n!r}") from None
    zoo_config(args.variant)  # an unknown variant fails before any work
    from core.play.sessions_bench import bench_sessions

    results = []
    print(f"{'sessions':>8} {'fps/session (each)':<40} {'min':>6} {'mean':>6} {'total':>6} {'p95 step ms':>11}")
    for count in counts:
        result = bench_sessions(args.variant, count, args.seconds, args.threads, args.step_concurrency)
        results.append(asdict(result))
        each = " ".join(f"{fps:.1f}" for fps in result.fps_per_session)
        print(
            f"{count:>8} {each:<40} {result.fps_min:>6.1f} {result.fps_mean:>6.1f} {result.fps_total:>6.1f} "
            f"{result.step_ms_p95:>11.0f}"
        )
    print(f"variant {args.variant}, {args.threads} torch threads, step concurrency {args.step_concurrency}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run_bench_browser(args) -> int:
    from core.cli import UsageError
    from core.play.browser_bench import as_dict, bench_browser
    from core.play.page import LOOPS

    loops = [name.strip() for name in args.loop.split(",") if name.strip()]
    if not loops or any(name not in LOOPS for name in loops):
        raise UsageError(f"--loop takes {' or '.join(LOOPS)} (comma-separated for several), got {args.loop!r}")
    results = [bench_browser(args.model, args.seconds, args.threads, loop) for loop in loops]
    print(
        f"{'model':<10} {'loop':<10} {'threads':>7} {'fps':>6} {'key->frame p50 ms':>18} {'p95 ms':>7} "
        f"{'key samples':>11}"
    )
    for result in results:
        print(
            f"{result.model:<10} {result.loop:<10} {result.threads:>7} {result.fps:>6.1f} "
            f"{result.key_to_frame_ms_p50:>18.0f} {result.key_to_frame_ms_p95:>7.0f} {result.key_samples:>11}"
        )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [as_dict(result) for result in results]
        path.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2) + "\n")
    return 0
