"""PocketWorld in the browser: pick a model and a start, then play the dream with your keyboard.

Thin wiring only: every action lives in `core.play` (tested without a browser); this module
places the components and connects their events. Each browser tab holds its own world in a
`gr.State`. Frames stream over a WebSocket route mounted beside Gradio (core/play/stream.py), or
with `--loop timer` a `gr.Timer` drives them (core/play/page.py); the README gives both speeds.
It lives in the package so that an installed PocketWorld serves it too: the repository's `app.py`
and `pocketworld play` only call it.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--model nano] [--threads N] [--loop websocket|timer]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gradio as gr

from core.cli import UsageError
from core.cli.play import add_play_arguments, check_port_free, play_host, play_port, port_taken_message
from core.config import ZOO
from core.play.benchmarks import EVAL_DIR, show_benchmarks
from core.play.community import ANY, HEADERS, browse
from core.play.community import show as show_finetune
from core.play.controller import START_GAME, START_UPLOAD, Player, PlayerConfig
from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig
from core.play.models import check_model
from core.play.page import (
    ASSETS_DIR,
    CONTROLS_HTML,
    CONTROLS_JS,
    CSS,
    KEYS_JS,
    PAGE_HEAD,
    SURFACE_JS,
    TARGET_FPS,
)
from core.play.real_or_dream import INTRO as REAL_OR_DREAM_INTRO
from core.play.real_or_dream import RealOrDream
from core.play.recording import FORMATS
from core.zoo import UnknownModelError, weights_dir


def build_app(
    player: Player, model: str | None = None, step_concurrency: int | None = 1, finetunes: FinetuneQueue | None = None
) -> gr.Blocks:
    with gr.Blocks(title="PocketWorld") as demo:
        gr.Markdown(
            "# PocketWorld\nA world model that *is* the game: every frame is dreamed from the last one "
            "and the keys you hold."
        )
        with gr.Tab("Play"):
            session = gr.State(None, delete_callback=lambda s: s is not None and s.close())
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    model_pick = gr.Dropdown(
                        player.model_choices(), value=model or player.default_model(), label="Model"
                    )
                    with gr.Accordion("Which models can play, and how to get the others", open=False):
                        gr.Markdown(player.model_notes())
                    start_kind = gr.Radio([START_GAME, START_UPLOAD], value=START_GAME, label="Start from")
                    game = gr.Dropdown(player.game_choices(), value=player.games()[0], label="Game")
                    seed = gr.Number(0, precision=0, minimum=0, label="Level seed")
                    upload = gr.File(
                        label="Start image (PNG/JPEG, letterboxed to 256x256)", file_types=["image"], type="filepath"
                    )
                    with gr.Row():
                        start = gr.Button("Start", variant="primary", elem_id="pw-start")
                        reset = gr.Button("Reset", elem_id="pw-reset")
                with gr.Column(scale=2, min_width=300):
                    surface = gr.HTML(
                        player.opening_message(model), js_on_load=SURFACE_JS, head=PAGE_HEAD, elem_id="pw-surface"
                    )
                    keys = gr.HTML("0", html_template="", js_on_load=KEYS_JS, head=PAGE_HEAD, elem_id="pw-keys")
                    gr.HTML(CONTROLS_HTML, js_on_load=CONTROLS_JS, head=PAGE_HEAD, elem_id="pw-controls")
                    with gr.Row():
                        fmt = gr.Radio(list(FORMATS), value="gif", label="Recording format")
                        save = gr.Button("Save recording", elem_id="pw-save")
                    save_note = gr.Markdown()
                    recording = gr.File(label="Recording", interactive=False)
            ticks = gr.Timer(1 / TARGET_FPS, active=False)

            def loop(running: bool):  # frames flow while a session runs; a message stops them
                return gr.Timer(active=running)

            def start_session(*inputs):
                new_session, html, running = player.start(*inputs)
                return new_session, html, loop(running)

            def next_frame(state, key_state):
                html, running = player.step(state, key_state)
                return html, (gr.skip() if running else loop(False))

            def reset_session(state):
                html, running = player.reset(state)
                return html, loop(running)

            start.click(
                start_session,
                [session, model_pick, start_kind, game, seed, upload],
                [session, surface, ticks],
                show_progress="minimal",
            )
            reset.click(reset_session, session, [surface, ticks], show_progress="hidden")
            # "once": a tick that comes while the last frame is still computing is dropped, not queued
            ticks.tick(
                next_frame,
                [session, keys],
                [surface, ticks],
                show_progress="hidden",
                trigger_mode="once",
                concurrency_limit=step_concurrency,
                api_visibility="private",
            )
            save.click(player.save_recording, [session, fmt], [recording, save_note])
        with gr.Tab("Benchmarks") as benchmarks_tab:
            gr.Markdown(
                "Measured quality (`pocketworld evaluate`) and speed (`pocketworld bench play`) of each "
                f"model, read from `<model folder>/{EVAL_DIR}/`; or paste the folder of any report."
            )
            with gr.Row():
                bench_model = gr.Dropdown(player.model_choices(), value=model or player.default_model(), label="Model")
                report_path = gr.Textbox(label="Or a report folder / results.json", placeholder="runs/report")
                show = gr.Button("Show", elem_id="pw-bench-show")
            bench_text = gr.Markdown(elem_id="pw-bench")
            bench_plots = gr.Gallery(label="Plots", format="png", columns=2, object_fit="contain", height="auto")
            for event in (benchmarks_tab.select, bench_model.change, show.click, report_path.submit):
                event(
                    lambda value, path: show_benchmarks(value, path, player.registry),
                    [bench_model, report_path],
                    [bench_text, bench_plots],
                )
        with gr.Tab("Real or dream?") as dream_tab:
            game_show = RealOrDream(player.models, registry=player.registry)
            pair_round = gr.State(None)  # the visitor's current pair; the answer stays on the server
            gr.Markdown(REAL_OR_DREAM_INTRO)
            with gr.Row():
                dream_model = gr.Dropdown(player.model_choices(), value=model or player.default_model(), label="Model")
                dream_game = gr.Dropdown(player.game_choices(), value=player.games()[0], label="Game")
                deal = gr.Button("New pair", variant="primary", elem_id="pw-deal")
            pair_note = gr.Markdown()
            pair_clips = gr.HTML(elem_id="pw-pair")
            with gr.Row():
                pick_a = gr.Button("A is real", elem_id="pw-pick-a")
                pick_b = gr.Button("B is real", elem_id="pw-pick-b")
            scoreboard = gr.Markdown(elem_id="pw-scoreboard")
            # one pair made at a time: a new pair is ~60 model steps, and players share the CPU
            deal.click(
                game_show.new_pair, [dream_model, dream_game], [pair_round, pair_clips, pair_note], concurrency_limit=1
            )

            def vote_for(side):
                def vote(round_id, request: gr.Request):  # votes are rate-limited per Gradio session
                    return game_show.vote(round_id, side, request.session_hash if request else None)

                return vote

            for button, side in ((pick_a, "A"), (pick_b, "B")):
                button.click(vote_for(side), pair_round, [pair_round, pair_note]).then(
                    game_show.scoreboard, None, scoreboard
                )
            dream_tab.select(game_show.scoreboard, None, scoreboard)
        with gr.Tab("Fine-tune"):
            jobs = finetunes or FinetuneQueue(registry=player.registry)
            job = gr.State(None)  # this visitor's fine-tune id; the job itself stays on the server
            gr.Markdown(
                "Record your game, upload it with its action log, and LoRA fine-tune a model on it "
                "(`pocketworld finetune` does the same). One fine-tune runs at a time. No action log? Pick an "
                "IDM under Keys to propose them; you check its keys before anything trains."
            )
            with gr.Row():
                with gr.Column():
                    ft_gameplay = gr.File(
                        label="Gameplay: a video, a .zip of PNG frames, or .tar shards",
                        type="filepath",
                        elem_id="pw-ft-gameplay",
                    )
                    ft_actions = gr.File(
                        label="Action log: CSV 'frame,keys' or JSON (not needed for shards)", type="filepath"
                    )
                    ft_labeller = gr.Dropdown(
                        [("from the action log", "")] + [(f"proposed by the IDM {name}", name) for name in jobs.idms()],
                        value="",
                        label="Keys" + ("" if jobs.idms() else " (no IDMs installed: start the app with --idms DIR)"),
                        elem_id="pw-ft-keys",
                    )
                    ft_game = gr.Textbox(label="Game name", elem_id="pw-ft-game")
                    ft_base = gr.Dropdown(list(ZOO), value="nano", label="Base model")
                    ft_rank = gr.Slider(1, jobs.config.max_rank, value=8, step=1, label="LoRA rank")
                    ft_steps = gr.Slider(
                        10, jobs.config.max_steps, value=300, step=10, label="Steps", elem_id="pw-ft-steps"
                    )
                    ft_start = gr.Button("Fine-tune", variant="primary", elem_id="pw-ft-start")
                    ft_note = gr.Markdown(elem_id="pw-ft-note")
                with gr.Column():
                    ft_status = gr.Markdown(elem_id="pw-ft-status")
                    ft_review = gr.Image(label="Proposed keys", type="filepath", interactive=False, visible=False)
                    ft_keys = gr.File(label="Proposed keys (a JSON action log to correct)", visible=False)
                    with gr.Row(visible=False) as ft_decide:
                        ft_accept = gr.Button("Accept keys", variant="primary", elem_id="pw-ft-accept")
                        ft_discard = gr.Button("Discard", elem_id="pw-ft-discard")
                    ft_curve = gr.Image(label="Loss", type="filepath", interactive=False)
                    ft_repo = gr.Textbox(label="Share as (owner/name)", elem_id="pw-ft-repo")
                    ft_push = gr.Button("Push", elem_id="pw-ft-push")
                    ft_pushed = gr.Markdown(elem_id="pw-ft-pushed")
            ft_ticks = gr.Timer(2.0)  # progress, queue position and the live loss curve
            shown_review = gr.State(None)  # (job id, state) whose review parts the page shows: redrawn on a change only

            def review_parts(job_id, shown):
                now = (job_id, jobs.state_of(job_id))
                if now == shown:
                    return gr.skip(), gr.skip(), gr.skip(), shown
                picture, keys = jobs.review_files(job_id)
                return (
                    gr.Image(value=picture, visible=picture is not None),
                    gr.File(value=keys, visible=keys is not None),
                    gr.Row(visible=now[1] == "review"),
                    now,
                )

            ft_start.click(
                jobs.submit, [ft_base, ft_gameplay, ft_actions, ft_game, ft_rank, ft_steps, ft_labeller], [job, ft_note]
            )
            ft_ticks.tick(jobs.status, job, [ft_status, ft_curve], show_progress="hidden", api_visibility="private")
            ft_ticks.tick(
                review_parts,
                [job, shown_review],
                [ft_review, ft_keys, ft_decide, shown_review],
                show_progress="hidden",
                api_visibility="private",
            )
            ft_accept.click(jobs.approve, job, ft_note)
            ft_discard.click(jobs.discard, job, ft_note)
            ft_push.click(jobs.push, [job, ft_repo], ft_pushed)
        with gr.Tab("Community") as community_tab:
            with gr.Row():
                cm_search = gr.Textbox(label="Search names")
                cm_game = gr.Dropdown([ANY], value=ANY, label="Game")
                cm_base = gr.Dropdown([ANY], value=ANY, label="Base model")
            cm_note = gr.Markdown(elem_id="pw-cm-note")
            cm_table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="pw-cm-table")
            cm_play_value = gr.State(None)
            with gr.Row():
                cm_card = gr.Markdown(elem_id="pw-cm-card")
                cm_preview = gr.Image(label="Preview", type="filepath", interactive=False)
            cm_play = gr.Button("Play it", variant="primary", elem_id="pw-cm-play")

            def list_finetunes(search, game, base):
                rows, games, bases, note = browse(player.registry, game, base, search)
                return (
                    rows,
                    gr.Dropdown(games, value=game if game in games else ANY),
                    gr.Dropdown(bases, value=base if base in bases else ANY),
                    note,
                )

            def open_finetune(event: gr.SelectData):
                return show_finetune(player.registry, event.row_value[0])

            def play_finetune(value):
                if value is None:
                    return gr.skip(), "Pick a fine-tune in the table first."
                return (
                    gr.Dropdown(player.model_choices(), value=value),
                    f"`{value}` is picked in the Play tab: open it and press Start.",
                )

            for event in (community_tab.select, cm_search.submit, cm_game.input, cm_base.input):
                event(list_finetunes, [cm_search, cm_game, cm_base], [cm_table, cm_game, cm_base, cm_note])
            cm_table.select(open_finetune, None, [cm_card, cm_preview, cm_play_value])
            cm_play.click(play_finetune, cm_play_value, [model_pick, cm_note])
    return demo


def serve(
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    model: str | None = None,
    threads: int = 2,
    step_concurrency: int | None = 1,
    loop: str = "websocket",
    idms: str | None = None,
) -> None:
    """Serve the app on `host` (None: $GRADIO_SERVER_NAME, else 127.0.0.1) and `port` (None:
    $GRADIO_SERVER_PORT, else 7860), as Gradio's own launch() would on a Hugging Face Space. A taken port or an
    unknown model is a UsageError / UnknownModelError before anything is served."""
    host, port = play_host(host), play_port(port)
    if idms is not None and not Path(idms).is_dir():
        raise UsageError(f"--idms {idms}: no such folder (it holds IDM folders from `pocketworld idm train`)")
    check_port_free(host, port)
    import torch

    torch.set_num_threads(threads)  # on a shared CPU the thread count decides the frame rate
    from finetune.registry import make_registry

    registry = make_registry("local")  # shared fine-tunes: played, browsed and pushed to
    check_model(model, registry)  # else the page would open on a model that is not in its list
    player = Player(PlayerConfig(loop=loop, step_concurrency=step_concurrency), registry=registry)
    opening = player.choice(model or player.default_model())
    if opening.playable:  # the log says what a visitor plays (a Space's log is all its owner sees)
        source = weights_dir(opening.value) if opening.value in ZOO else "the fine-tune registry"
        print(f"* Model: {opening.value}, weights from {source}", flush=True)
    else:
        print(f"* Model: {opening.value} has no trained weights yet: {opening.how_to_get}", flush=True)
    finetunes = FinetuneQueue(FinetuneTabConfig(idm_dir=Path(idms) if idms else None), registry=registry)
    demo = build_app(player, model, step_concurrency, finetunes)
    try:
        # quiet: Gradio's start-up lines tell a CLI user to "set `share=True` in `launch()`"; ours name --share
        demo.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            share=share,
            css=CSS,
            quiet=True,
            allowed_paths=[str(ASSETS_DIR), str(player.recordings_dir), str(registry.root), str(finetunes.work_dir)],
            max_file_size=player.config.upload.max_bytes,
            prevent_thread_lock=True,
        )
    except OSError as err:
        if "empty port" not in str(err):
            raise
        raise UsageError(port_taken_message(host, port)) from None  # taken between our check and Gradio's bind
    print(f"* Running on local URL:  {demo.local_url}", flush=True)
    if not share:
        print("* For a public gradio.live link, start again with --share", flush=True)
    if player.streams is not None:  # the frame stream's WebSocket route, beside Gradio's own (core/play/stream.py)
        player.streams.mount(demo.app)
    demo.block_thread()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Play PocketWorld in the browser.")
    add_play_arguments(parser)
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, args.share, args.model, args.threads, args.step_concurrency, args.loop, args.idms)
    except (UsageError, UnknownModelError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
