"""The "Real or dream?" tab without a browser: clip pairs, the recorded random order, votes, fooled rates."""

import base64
import io
import random
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from core.data.shards import split_of
from core.play import dream_pairs, real_or_dream
from core.play.dream_pairs import ClipConfig, clip_pair
from core.play.models import ModelCache
from core.play.real_or_dream import RealOrDream, RealOrDreamConfig, jitter_palettes
from core.play.votes import Tally, VoteError, VoteStore
from core.world_model import WorldModel
from tests.conftest import tiny_config

STEPS = 2  # actions per clip: enough to prove both clips follow them, fast on a CPU


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WorldModel(tiny_config()).eval()


@pytest.fixture
def game_show(tmp_path, monkeypatch, model):
    model.save_pretrained(tmp_path / "zoo" / "nano")
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path / "zoo"))
    config = RealOrDreamConfig(
        votes_path=tmp_path / "votes.sqlite",
        clips_dir=tmp_path / "clips",
        levels_per_game=2,
        clip=ClipConfig(steps=STEPS),
        min_watch_s=0.0,
    )
    return RealOrDream(ModelCache(), config, rng=random.Random(0))


def gif_ms(path):
    """How long a GIF plays: PIL merges repeated frames into one longer frame, so count time, not frames."""
    with Image.open(path) as gif:
        total = 0
        for index in range(gif.n_frames):
            gif.seek(index)
            total += gif.info["duration"]
        return total


def test_a_clip_pair_shares_start_and_actions_and_is_made_once(model, tmp_path, monkeypatch):
    pair = clip_pair(model, "nano", "platformer", 11, tmp_path, ClipConfig(steps=STEPS))
    assert len(pair.actions) == STEPS and gif_ms(pair.real) == gif_ms(pair.dream) == (STEPS + 1) * 30
    with Image.open(pair.real) as real, Image.open(pair.dream) as dream:
        assert np.array_equal(np.asarray(real.convert("RGB")), np.asarray(dream.convert("RGB")))  # same first frame

    def no_second_play(*args):
        raise AssertionError("a cached pair was made again")

    monkeypatch.setattr(dream_pairs, "play_real", no_second_play)
    assert clip_pair(model, "nano", "platformer", 11, tmp_path, ClipConfig(steps=STEPS)) == pair


def test_votes_are_scored_against_the_recorded_side_and_counted_once(tmp_path):
    store = VoteStore(tmp_path / "data" / "votes.sqlite")  # the folder is created on first use
    first = store.new_round("nano", "platformer", 11, "A")
    assert store.get_round(first.id) == first
    assert store.vote(first.id, "B") == (first, True)  # B was the dream: fooled
    with pytest.raises(VoteError, match="already has your vote"):
        store.vote(first.id, "A")
    with pytest.raises(VoteError, match="no clip pair 'nope'"):
        store.vote("nope", "A")
    with pytest.raises(VoteError, match="side A or B"):
        store.vote(store.new_round("nano", "maze", 63, "B").id, "C")
    with pytest.raises(VoteError, match="side A or B"):
        store.new_round("nano", "maze", 63, "left")
    second = store.new_round("nano", "maze", 63, "B")
    assert store.vote(second.id, "B") == (second, False)
    assert VoteStore(tmp_path / "data" / "votes.sqlite").tallies() == [  # the file keeps them
        Tally("all", 2, 1),
        Tally("nano / maze", 1, 0),
        Tally("nano / platformer", 1, 1),
    ]


def test_fooled_rates_and_their_intervals():
    assert Tally("all", 0, 0).rate is None and Tally("all", 0, 0).interval() is None
    assert Tally("all", 4, 1).rate == 0.25
    low, high = Tally("all", 10, 5).interval()  # Wilson 95% for 5/10
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert Tally("all", 3, 0).interval()[0] == 0.0 and Tally("all", 3, 3).interval()[1] == pytest.approx(1.0)


def test_concurrent_voters_all_count(tmp_path):
    store = VoteStore(tmp_path / "votes.sqlite")
    rounds = [store.new_round("nano", "platformer", 11, "AB"[i % 2]) for i in range(40)]

    def vote(share):
        for round_ in share:
            store.vote(round_.id, "A")

    voters = [threading.Thread(target=vote, args=(rounds[i::4],)) for i in range(4)]
    for voter in voters:
        voter.start()
    for voter in voters:
        voter.join()
    assert store.tallies()[0] == Tally("all", 40, 20)


def test_the_tab_deals_pairs_in_a_recorded_random_order_and_reports_who_was_fooled(game_show):
    assert "No votes yet" in game_show.scoreboard()
    sides = []
    for _ in range(6):
        round_id, html, message = game_show.new_pair("nano", "platformer")
        round_ = game_show.store.get_round(round_id)
        assert split_of(round_.seed) == "test" and "Which clip is the real game?" in message
        shown = re.findall(r'src="data:image/gif;base64,([^"]+)" alt="clip ([AB])"', html)
        assert [side for _, side in shown] == ["A", "B"]
        assert "real" not in html and "dream" not in html  # nothing in the page gives the answer away
        sides.append(round_.real_side)
    assert set(sides) == {"A", "B"}

    _, message = game_show.vote(round_id, round_.real_side)
    assert message.startswith(f"You picked {round_.real_side}. Right")
    assert game_show.vote(round_id, "A")[1].startswith("this pair already has your vote")
    board = game_show.scoreboard()
    assert "| all | 1 | 0 | 0% (0%-79%) |" in board and "| nano / platformer | 1 | 0 |" in board


def test_bad_requests_give_messages(game_show):
    assert game_show.vote(None, "A") == (None, "No pair to vote on yet: press 'New pair' first.")
    assert "no clip pair 'forged'" in game_show.vote("forged", "A")[1]
    assert game_show.new_pair("nano", "pong")[2].startswith("Cannot deal a pair: unknown game 'pong'")
    round_id, html, message = game_show.new_pair("large", "platformer")
    assert round_id is None and html == "" and "no trained weights for 'large'" in message


def test_the_votes_file_appears_on_first_use_not_when_the_app_is_built(tmp_path):
    game_show = RealOrDream(ModelCache(), RealOrDreamConfig(votes_path=tmp_path / "votes" / "v.sqlite"))
    assert not (tmp_path / "votes").exists()
    assert "No votes yet" in game_show.scoreboard() and (tmp_path / "votes" / "v.sqlite").is_file()


def test_an_unusable_votes_file_is_a_message(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    game_show = RealOrDream(ModelCache(), RealOrDreamConfig(votes_path=tmp_path / "file" / "votes.sqlite"))
    assert game_show.scoreboard().startswith(f"The votes file {tmp_path}/file/votes.sqlite cannot be used")
    assert game_show.vote("abc", "A")[0] == "abc"  # nothing was counted: the visitor can vote again


def shown_gifs(html):
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/gif;base64,([^"]+)"', html)]


def gif_pixels(data):
    with Image.open(io.BytesIO(data)) as gif:
        return np.stack([np.asarray(gif.convert("RGB"), np.int16) for _ in ImageSequence.Iterator(gif)])


def test_a_cached_clip_never_reaches_the_page_twice_alike_and_no_vote_names_its_level(game_show):
    """A script that votes once learns the answer; it must not recognise the same clip in the next round."""
    game_show.levels = game_show.levels[:1]  # every round deals the same cached pair
    first, second = (game_show.new_pair("nano", "platformer") for _ in range(2))
    seen = [shown_gifs(first[1]), shown_gifs(second[1])]
    rounds = [game_show.store.get_round(first[0]), game_show.store.get_round(second[0])]
    by_side = [dict(zip("AB", gifs)) for gifs in seen]
    real = [by_side[i][r.real_side] for i, r in enumerate(rounds)]
    assert real[0] != real[1]  # other bytes
    pixels = [gif_pixels(clip) for clip in real]
    assert not np.array_equal(*pixels) and np.abs(pixels[0] - pixels[1]).max() <= 2  # other pixels, same clip
    message = game_show.vote(first[0], rounds[0].real_side, "session")[1]
    assert "level" not in message and str(rounds[0].seed) not in message


def test_votes_are_rate_limited_per_session_and_none_come_before_the_clip_plays(game_show, monkeypatch):
    game_show.config.votes_per_session = 2
    rounds = [game_show.new_pair("nano", "platformer")[0] for _ in range(4)]
    assert game_show.vote(rounds[0], "A", "script")[0] is None
    assert game_show.vote(rounds[1], "A", "script")[0] is None
    open_round, message = game_show.vote(rounds[2], "A", "script")
    assert open_round == rounds[2] and message.startswith("Too many votes from this session: at most 2 in 10 minutes")
    assert game_show.vote(rounds[2], "A", "a person")[0] is None  # another session still votes
    later = real_or_dream.time.monotonic() + game_show.config.vote_window_s + 1
    monkeypatch.setattr(real_or_dream.time, "monotonic", lambda: later)  # the window has passed
    assert game_show.vote(rounds[3], "A", "script")[0] is None

    game_show.min_watch_s = 60.0
    fresh = game_show.new_pair("nano", "platformer")[0]
    assert game_show.vote(fresh, "A", "quick") == (fresh, "Watch both clips first: they play for 60 s.")
    assert game_show.store.tallies()[0].votes == 4


def test_jittered_gifs_stay_gifs_of_the_same_clip(model, tmp_path):
    pair = clip_pair(model, "nano", "maze", 3, tmp_path, ClipConfig(steps=STEPS))
    data = pair.real.read_bytes()
    jittered = jitter_palettes(data, random.Random(1))
    assert len(jittered) == len(data) and jittered != data
    original, changed = gif_pixels(data), gif_pixels(jittered)
    assert original.shape == changed.shape and np.abs(original - changed).max() <= 1
