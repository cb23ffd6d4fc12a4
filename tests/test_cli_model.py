import json
import subprocess
import sys

from core.cli import main


def test_zoo_json_lists_every_variant_with_its_parts(capsys):
    assert main(["zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["nano", "tiny", "base", "large"]
    for row in rows:
        assert set(row) >= {"name", "params_total", "params_tokenizer", "params_dynamics", "params_decoder",
                            "weights_available"}
        assert row["params_total"] == row["params_tokenizer"] + row["params_dynamics"] + row["params_decoder"]
        assert isinstance(row["weights_available"], bool)


def test_zoo_sees_weights_saved_in_the_zoo_folder(tmp_path, monkeypatch, capsys):
    from core.world_model import WorldModel
    from tests.conftest import tiny_config
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    WorldModel(tiny_config()).save_pretrained(tmp_path / "tiny")
    main(["zoo", "--json"])
    available = {r["name"]: r["weights_available"] for r in json.loads(capsys.readouterr().out)}
    assert available == {"nano": False, "tiny": True, "base": False, "large": False}


def test_loading_a_variant_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    import pytest
    from core.zoo import WeightsNotAvailable, load
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    with pytest.raises(WeightsNotAvailable, match="no trained weights for 'base'.*pocketworld train"):
        load("base")


def test_bench_play_prints_a_table_and_writes_the_contract_fields(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "play", "--variant", "nano", "--steps", "3", "--warmup", "1", "--threads", "1",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"fps", "latency_ms_p50", "latency_ms_p95", "peak_rss_mb", "threads", "variant", "precision"}
    assert result["variant"] == "nano" and result["threads"] == 1 and result["fps"] > 0
    assert "fps" in capsys.readouterr().out


def test_unknown_variant_is_a_one_line_error():
    done = subprocess.run([sys.executable, "-m", "core", "bench", "play", "--variant", "huge"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown variant 'huge'; the zoo has: nano, tiny, base, large" in done.stderr
    assert "Traceback" not in done.stderr
