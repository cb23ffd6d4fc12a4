"""The "Real or dream?" tab without a browser: clip pairs, the recorded random order, votes, fooled rates."""

import random
import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.shards import split_of
from core.play import dream_pairs
from core.play.dream_pairs import ClipConfig, clip_pair
from core.play.models import ModelCache
from core.play.real_or_dream import RealOrDream, RealOrDreamConfig
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
    config = RealOrDreamConfig(votes_path=tmp_path / "votes.sqlite", clips_dir=tmp_path / "clips",
                               levels_per_game=2, clip=ClipConfig(steps=STEPS))
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
    assert store.vote(first.id, "B") == (first, True)      # B was the dream: fooled
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
        Tally("all", 2, 1), Tally("nano / maze", 1, 0), Tally("nano / platformer", 1, 1)]


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
