"""The web-game recorder on the canvas game the test suite ships (skips where Chromium or Playwright is absent)."""

from pathlib import Path

import numpy as np
import pytest

from core.actions import ACTION_IDS

pytest.importorskip("playwright")
from core.games.web import find_chromium  # noqa: E402

if find_chromium() is None:
    pytest.skip("no Chromium (apt-get install chromium)", allow_module_level=True)

PAGE = Path(__file__).parent / "assets" / "canvas_game.html"


@pytest.mark.slow
def test_web_game_records_keys_and_canvas(tmp_path):
    from core.data.recorder import CollectConfig, Collector
    from core.data.shards import list_shards, read_shard
    from core.games import make_game

    game = make_game(f"web:{PAGE}")
    try:
        first = game.reset([5])
        x0 = game.state_vector()[0, 0]
        for _ in range(10):
            frames, done = game.step(np.array([ACTION_IDS["RIGHT"]]))
        state = game.state_vector()[0]
        assert state[0] > x0 and state[3] > 0 and not done[0]  # moved right; the page clock ran
        assert first.shape == (1, 256, 256, 3) and (frames != first).any()
        game.step(np.array([ACTION_IDS["UPFIRE"]]))
        assert game.held == {"ArrowUp", "Space"} and game.state_vector()[0, 2] == 1
    finally:
        game.close()

    Collector(
        CollectConfig(game=f"web:{PAGE}", agent="random", frames=40, num_envs=1, chunk=32, max_steps=60),
        tmp_path / "web",
        progress=False,
    ).run()
    sample = next(read_shard(list_shards(tmp_path / "web")[0]))
    assert sample.frames.shape[1:] == (256, 256, 3) and sample.state.shape[1] == 4 and sample.actions.max() < 18
