"""The play page's logic without a browser: keys, stats, uploads, recordings, sessions, the controller."""

import io
import re
import shutil
import subprocess
import time
from html import unescape

import numpy as np
import pytest
import torch
from PIL import Image

from core import actions
from core.play.controller import START_GAME, START_UPLOAD, WELCOME, Player, PlayerConfig
from core.play.models import ModelChoice, registry_choices
from core.play.page import PLAY_JS, hud_line, message_html
from core.play.play_session import PlaySession, PlaySessionConfig, SessionExpired, keys_to_action, parse_key_state
from core.play.recording import Recording, RecordingConfig, RecordingError
from core.play.sessions_bench import bench_sessions
from core.play.stats import FrameStats
from core.play.stream import MAX_IN_FLIGHT, STREAM_PATH, unpack_frame
from core.play.upload import StartImageError, UploadConfig, load_start_image
from core.world_model import WorldModel
from finetune.registry import ModelEntry
from tests.conftest import tiny_config
from tests.synthetic import sprite_frames


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WorldModel(tiny_config())


@pytest.fixture
def zoo_with_nano(tmp_path, monkeypatch, model):
    model.save_pretrained(tmp_path / "nano")
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    return tmp_path


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_held_keys_map_to_one_action_and_unknown_keys_are_ignored():
    assert parse_key_state("7|arrowleft|space") == (7, ["arrowleft", "space"])
    assert keys_to_action(parse_key_state("7|arrowleft|space")[1]) == actions.ACTION_IDS["LEFTFIRE"]
    assert keys_to_action(["w", "d", "shift"]) == actions.ACTION_IDS["UPRIGHT"]
    assert parse_key_state("") == (0, []) and parse_key_state("3") == (3, [])
    with pytest.raises(ValueError, match="change number"):
        parse_key_state("arrowleft")
    assert keys_to_action(["arrowleft", "arrowright"]) == actions.NOOP  # opposite directions cancel


def test_frame_stats_report_the_rate_and_latency_of_recent_frames():
    stats = FrameStats()
    for i in range(11):
        stats.add(10.0 + i * 0.1, latency_ms=40.0 + i)
    assert stats.fps(now=11.0) == pytest.approx(10.0)
    assert stats.latency_ms(50) == pytest.approx(45.0)
    assert stats.fps(now=100.0) == 0.0  # nothing in the window any more
    assert FrameStats().summary(0.0)["fps"] == 0.0


def test_the_hud_shows_a_dash_not_zero_before_anything_was_measured():
    hud = {**FrameStats().summary(0.0), "frame": 0, "action": "NOOP", "model": "nano"}
    assert hud_line(hud).startswith("model step p50 – p95 – · frame 0")
    stats = FrameStats()
    stats.add(1.0, latency_ms=42.0)
    assert hud_line({**hud, **stats.summary(1.0)}).startswith("model step p50 42 ms p95 42 ms")
    node = shutil.which("node")
    if node is None:
        pytest.skip("the page's half of the HUD is JavaScript: node runs it")
    script = (
        "const window = {}; const performance = { now: () => 0 };"
        + PLAY_JS.read_text(encoding="utf-8")
        + "const pw = window.__pocketworld; console.log(pw.hudText(pw.report())); pw.keyLatencies.push(164.4, 241);"
        "console.log(pw.hudText(pw.report()));"
    )
    before, after = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert before == "0.0 FPS · key→frame p50 – p95 –"
    assert after == "0.0 FPS · key→frame p50 241 ms p95 241 ms"


def test_an_uploaded_image_is_letterboxed_to_the_frame_size(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (200, 100), (255, 0, 0)).save(path)
    frame = load_start_image(path)
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert (frame[0, 0] == 0).all() and (frame[128, 128] == (255, 0, 0)).all()  # black bars, red middle


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no image uploaded"),
        ("empty", "is empty"),
        ("text", "not an image"),
        ("truncated", "could not be decoded"),
        ("big_file", "the limit is"),
        ("many_pixels", "megapixels"),
    ],
)
def test_bad_uploads_say_what_is_wrong(tmp_path, case, message):
    config = UploadConfig(max_bytes=50_000, max_pixels=1_000_000)
    path = tmp_path / f"{case}.png"
    if case == "missing":
        path = None
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, not a picture")
    elif case == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue()[:2000])
    elif case == "big_file":
        path.write_bytes(b"\x89PNG" + bytes(60_000))
    elif case == "many_pixels":
        Image.new("RGB", (2000, 1000)).save(path)
    with pytest.raises(StartImageError, match=message):
        load_start_image(path, config)


def test_recordings_save_as_gif_and_mp4_and_keep_only_the_last_frames(tmp_path):
    import av

    recording = Recording(RecordingConfig(max_frames=5))
    with pytest.raises(RecordingError, match="nothing to save"):
        recording.save(tmp_path / "x.gif", "gif")
    for i, frame in enumerate(sprite_frames(8)):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, "JPEG")
        recording.add(buffer.getvalue(), time_s=i * 0.1)
    assert len(recording) == 5 and recording.playback_fps() == pytest.approx(10.0)
    with Image.open(recording.save(tmp_path / "play.gif", "gif")) as gif:
        assert gif.n_frames == 5 and gif.size == (256, 256)
    with av.open(str(recording.save(tmp_path / "play.mp4", "mp4"))) as video:
        assert sum(1 for _ in video.decode(video=0)) == 5
    with pytest.raises(RecordingError, match="unknown recording format"):
        recording.save(tmp_path / "x.avi", "avi")


def test_a_play_session_steps_records_and_ends_after_idle_time(model):
    clock = FakeClock()
    session = PlaySession(model, "nano", sprite_frames(1)[0], "test", PlaySessionConfig(idle_timeout_s=60), clock=clock)
    for _ in range(3):
        clock.now += 0.05
        frame = session.step(["arrowleft"])
    assert frame.shape == (256, 256, 3) and session.frame_index == 3 and len(session.recording) == 4
    assert session.summary()["action"] == "LEFT"
    clock.now += 59  # the loop keeps stepping with no keys held: that is not input
    session.step([])
    clock.now += 2
    with pytest.raises(SessionExpired, match="without input"):
        session.step([])
    assert session.closed and len(session.recording) == 5  # what was played can still be saved
    with pytest.raises(SessionExpired, match="press Start"):
        session.reset()


def test_reset_starts_over_from_the_start_frame(model):
    start = sprite_frames(1)[0]
    session = PlaySession(model, "nano", start, "test")
    session.step(["space"])
    assert np.array_equal(session.reset(), start)
    assert session.frame_index == 0 and len(session.recording) == 1


def test_the_picker_marks_models_without_weights_and_says_how_to_get_them(zoo_with_nano):
    player = Player()
    labels = dict((value, label) for label, value in player.model_choices())
    assert "no weights" not in labels["nano"] and "no weights" in labels["tiny"]
    assert player.default_model() == "nano"
    notes = player.model_notes()
    assert "**Playable:** nano" in notes and "`tiny`: no trained weights" in notes
    # the page opened on a variant without weights (a Space of tiny) says so before anyone presses Start
    assert player.opening_message(None) == player.opening_message("nano") == message_html(WELCOME)
    assert player.opening_message("tiny").startswith('<div class="pw-message pw-error">tiny has no trained weights yet')


def test_registry_fine_tunes_are_playable_when_their_base_is(zoo_with_nano):
    registry = type(
        "Registry",
        (),
        {
            "list": lambda self: [
                ModelEntry("alice/mario", "/x", "pocketworld/nano", "platformer"),
                ModelEntry("bob/zelda", "/y", "pocketworld/base", "maze"),
                ModelEntry("eve/odd", "/z", "gpt2", None),
            ]
        },
    )()
    choices = {c.value: c for c in registry_choices(registry)}
    assert choices["registry:alice/mario"].playable
    assert (
        not choices["registry:bob/zelda"].playable and "no trained weights" in choices["registry:bob/zelda"].how_to_get
    )
    assert (
        isinstance(choices["registry:eve/odd"], ModelChoice)
        and "not one of the zoo" in choices["registry:eve/odd"].how_to_get
    )


def test_the_controller_plays_a_level_and_saves_what_was_played(zoo_with_nano, tmp_path):
    player = Player(PlayerConfig(recordings_dir=tmp_path / "recordings", loop="timer"))
    session, html, running = player.start(None, "nano", START_GAME, "maze", 3, None)
    assert running and 'data-pw-keyseq="0"' in html and "data:image/jpeg;base64," in html
    first_start = re.search(r'data-pw-start="(\d+)"', html).group(1)
    html, running = player.step(session, "7|arrowup|z")
    assert running and 'data-pw-keyseq="7"' in html and "UPFIRE" in html and "frame 1" in html
    path, note = player.save_recording(session, "gif")
    assert path is not None and path.endswith(".gif") and "2 frames" in note
    html, running = player.reset(session)
    assert running and re.search(r'data-pw-start="(\d+)"', html).group(1) != first_start
    # a new start closes the old session
    new_session, _, _ = player.start(session, "nano", START_GAME, "platformer", 0, None)
    assert session.closed and not new_session.closed


def test_the_game_picker_offers_the_held_out_game_marked_as_such(zoo_with_nano, tmp_path):
    player = Player(PlayerConfig(recordings_dir=tmp_path, loop="timer"))
    labels = {game: label for label, game in player.game_choices()}
    assert list(labels) == player.games() and labels["maze"] == "maze"
    assert "held out" in labels["bricks"] and "fine-tune" in labels["bricks"]
    session, _, running = player.start(None, "nano", START_GAME, "bricks", 2, None)  # a fine-tune's start
    assert running and session.start_label == "bricks level 2"


def test_the_controller_turns_player_errors_into_page_messages(zoo_with_nano, tmp_path):
    player = Player(PlayerConfig(recordings_dir=tmp_path, loop="timer"))
    session, html, running = player.start(None, "tiny", START_GAME, "maze", 0, None)
    assert session is None and not running and "no trained weights for 'tiny'" in unescape(html) and "pw-error" in html
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    session, html, _ = player.start(None, "nano", START_UPLOAD, "maze", 0, str(bad))
    assert session is None and "not an image" in html
    session, html, _ = player.start(None, "nano", START_GAME, "maze", -1, None)
    assert session is None and "level seed" in html
    assert player.step(None, "") == (message_html(WELCOME), False)
    assert player.save_recording(None, "gif")[0] is None
    session, _, _ = player.start(None, "nano", START_GAME, "maze", 0, None)
    html, running = player.step(session, "arrowup")
    assert "Bad input" in html and not running
    session.close()
    html, running = player.step(session, "2")
    assert "press Start" in html and not running and "Traceback" not in html


def test_an_uploaded_image_starts_a_session(zoo_with_nano, tmp_path):
    path = tmp_path / "shot.png"
    Image.fromarray(sprite_frames(1)[0]).save(path)
    session, html, running = Player(PlayerConfig(recordings_dir=tmp_path, loop="timer")).start(
        None, "nano", START_UPLOAD, "", 0, str(path)
    )
    assert running and session.start_label == "uploaded image shot.png" and "data:image/jpeg" in html


def test_the_frame_stream_plays_a_session_over_a_websocket(zoo_with_nano, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    player = Player(PlayerConfig(recordings_dir=tmp_path))  # the default loop: the WebSocket stream
    session, html, running = player.start(None, "nano", START_GAME, "maze", 3, None)
    assert not running, "the timer must stay off while frames stream"
    token = re.search(r'data-pw-stream="([^"]+)"', html).group(1)
    assert len(token) >= 20 and player.streams.lookup(token) is session
    app = FastAPI()
    player.streams.mount(app)
    with TestClient(app) as client:
        with client.websocket_connect(f"{STREAM_PATH}/{token}") as ws:
            ws.send_text("5|arrowup|z")
            headers = []
            for _ in range(4):
                header, jpeg = unpack_frame(ws.receive_bytes())
                assert Image.open(io.BytesIO(jpeg)).size == (256, 256)
                headers.append(header)
                ws.send_text("ack")
            assert headers[-1]["key_seq"] == 5 and "UPFIRE" in headers[-1]["hud"]
            assert [h["start_id"] for h in headers] == [session.start_id] * 4
            assert session.frame_index >= 4 and len(session.recording) >= 5  # streamed frames are recorded
            session.close()  # the tab went away
            ended = ws.receive()
            while "text" not in ended:  # frames already on their way
                ws.send_text("ack")
                ended = ws.receive()
            assert "press Start" in unescape(ended["text"])
        with client.websocket_connect(f"{STREAM_PATH}/not-a-token") as ws:  # a guessed or stale token
            assert "press Start to play again" in ws.receive_text()


def test_the_stream_waits_for_the_page_instead_of_piling_up_frames(zoo_with_nano, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    player = Player(PlayerConfig(recordings_dir=tmp_path))
    session, _, _ = player.start(None, "nano", START_GAME, "platformer", 0, None)
    app = FastAPI()
    player.streams.mount(app)
    with TestClient(app) as client, client.websocket_connect(f"{STREAM_PATH}/{session.stream_token}") as ws:
        for _ in range(MAX_IN_FLIGHT):
            ws.receive_bytes()
        time.sleep(0.5)  # ~15 frames' time at 30 FPS, with no acknowledgement
        assert session.frame_index == MAX_IN_FLIGHT
        ws.send_text("ack")
        ws.receive_bytes()
        assert session.frame_index == MAX_IN_FLIGHT + 1


def test_several_sessions_keep_independent_worlds_and_all_get_frames(model):
    result = bench_sessions("nano", sessions=2, seconds=0.5, model=model)
    assert len(result.fps_per_session) == 2 and result.fps_min > 0
    assert result.fps_total == pytest.approx(sum(result.fps_per_session), abs=0.02)
