"""`pocketworld bench sessions`: N play sessions at once, per-session frames/s as a table and JSON."""

import json

from core import cli
from core.play import sessions_bench
from tests.conftest import tiny_config


def test_the_load_script_reports_every_session_of_every_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sessions_bench, "zoo_config", lambda variant: tiny_config())  # the nano code path, tiny widths
    out = tmp_path / "sessions.json"
    assert cli.main(["bench", "sessions", "--n", "1,2", "--seconds", "0.3", "--threads", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [r["sessions"] for r in results] == [1, 2]
    assert [len(r["fps_per_session"]) for r in results] == [1, 2]
    assert all(fps > 0 for r in results for fps in r["fps_per_session"])
    table = capsys.readouterr().out
    assert "fps/session (each)" in table and "variant nano, 1 torch threads, step concurrency 1" in table


def test_a_bad_session_count_is_one_line_not_a_traceback(capsys):
    assert cli.main(["bench", "sessions", "--n", "two"]) == 2
    assert "--n takes session counts like 1,2,4,8, got 'two'" in capsys.readouterr().err


def test_bench_browser_names_its_loops_and_refuses_an_unknown_one(capsys):
    assert cli.main(["bench", "browser", "--loop", "websocket,polling"]) == 2
    assert (
        "--loop takes websocket or timer (comma-separated for several), got 'websocket,polling'"
        in capsys.readouterr().err
    )
