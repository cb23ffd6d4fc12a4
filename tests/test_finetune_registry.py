"""Sharing adapters: push, list, info and pull through the local registry and, via huggingface_hub,
a local stand-in for the Hub (tests/hub_server.py); then the pulled adapter loads and plays.
Failures (no token, a taken name, a bad adapter) say why and leave the local adapter intact;
the token never appears in output or in anything written."""

import json
import re

import numpy as np
import pytest
import torch
from conftest import tiny_config
from hub_server import FakeHub
from huggingface_hub import constants

from core.cli import main
from core.session import WorldSession
from core.world_model import WorldModel
from finetune.lora import WEIGHTS_FILE, AdapterError, add_lora, load_adapter, save_adapter
from finetune.registry import AuthError, HubRegistry, LocalRegistry, RegistryError, RepoTakenError

BASE = "test-tiny"
TOKEN = "hf_secret_alice_token"


@pytest.fixture
def adapter(tmp_path):
    torch.manual_seed(0)
    folder = save_adapter(add_lora(WorldModel(tiny_config()), BASE), tmp_path / "adapter")
    return folder


@pytest.fixture
def hub(tmp_path, monkeypatch):
    # huggingface_hub reads its paths at import: point them at tmp_path so no real stored token or cache is used
    home = tmp_path / "hf-home"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub({TOKEN: "alice"}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def plays(folder) -> None:
    torch.manual_seed(0)
    session = WorldSession(load_adapter(WorldModel(tiny_config()), folder, base=BASE))
    session.reset(np.zeros((256, 256, 3), np.uint8))
    assert session.step("UP").shape == (256, 256, 3)


def test_local_registry_round_trip(tmp_path, adapter):
    registry = LocalRegistry(tmp_path / "registry")
    before = snapshot(adapter)
    where = registry.push(adapter, "jumpy", game="Jumpy Jim")
    assert snapshot(adapter) == before  # the card went into the registry's copy, not the user's folder
    entries = registry.list()
    assert [(e.repo, e.game, e.base_model) for e in entries] == [("local/jumpy", "Jumpy Jim", BASE)]
    assert registry.info("local/jumpy").card["library_name"] == "pocketworld"
    with pytest.raises(RepoTakenError, match="local/jumpy already exists"):
        registry.push(adapter, "jumpy", game="Jumpy Jim")
    registry.push(adapter, "local/jumpy", game="Jumpy Jim 2", update=True)
    assert registry.info("local/jumpy").game == "Jumpy Jim 2"
    pulled = registry.pull("local/jumpy", tmp_path / "pulled")
    assert sorted(p.name for p in pulled.iterdir()) == ["README.md", "adapter_config.json", WEIGHTS_FILE]
    assert str(pulled) != where
    load_adapter(WorldModel(tiny_config()), pulled, base=BASE)


def test_a_finetune_card_is_pushed_naming_the_repo_it_went_to_with_the_users_text_escaped(tmp_path, adapter):
    """`pocketworld finetune` (and the app's Fine-tune tab) writes the card for the adapter's folder ("adapter");
    pushed as alice/jumpy it must say `hub pull alice/jumpy`; a game's name stays text in the Markdown."""
    from finetune.cards import finetune_card

    game = "Jumpy | <img src=x onerror=alert(1)> [win](javascript:x)"
    card = finetune_card(adapter.name, BASE, game, 4, 8.0, ["to_q"], steps=3, data_frames=90, metrics={"mse": (2, 1)})
    (adapter / "README.md").write_text(card, encoding="utf-8")
    LocalRegistry(tmp_path / "registry").push(adapter, "alice/jumpy")
    pushed = (tmp_path / "registry" / "alice" / "jumpy" / "README.md").read_text(encoding="utf-8")
    body = pushed.split("\n---\n", 1)[1]  # below the YAML metadata (which keeps the name as data)
    assert "pocketworld hub pull alice/jumpy --out jumpy" in body and "hub pull adapter" not in body
    assert '"jumpy", base=' in body and "| mse | 2 | 1 |" in body
    assert not re.search(r"(?<!\\)<img", body) and "](javascript" not in body  # every < escaped
    assert "| game | Jumpy \\| \\<img src=x onerror=alert\\(1\\)\\> \\[win\\]\\(javascript:x\\) |" in body
    assert LocalRegistry(tmp_path / "registry").info("alice/jumpy").game == game


def test_push_refuses_bad_adapters_and_missing_cards(tmp_path, adapter):
    registry = LocalRegistry(tmp_path / "registry")
    with pytest.raises(RegistryError, match="has no README.md model card; pass --game"):
        registry.push(adapter, "jumpy")
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(AdapterError, match="holds pickle files"):
        registry.push(adapter, "jumpy", game="g")
    assert not (tmp_path / "registry" / "local" / "jumpy").exists()
    with pytest.raises(RegistryError, match="invalid repo name"):
        registry.push(tmp_path, "../escape", game="g")


def test_hub_round_trip_through_huggingface_hub(tmp_path, adapter, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    registry = HubRegistry()  # endpoint from HF_ENDPOINT, token from HF_TOKEN: as a user would run it
    assert registry.push(adapter, "jumpy", game="Jumpy Jim") == f"{hub.url}/alice/jumpy"
    assert sorted(hub.repos["alice/jumpy"]) == ["README.md", "adapter_config.json", WEIGHTS_FILE]
    assert hub.repos["alice/jumpy"][WEIGHTS_FILE] == (adapter / WEIGHTS_FILE).read_bytes()
    [entry] = registry.list()
    assert (entry.repo, entry.game, entry.base_model) == ("alice/jumpy", "Jumpy Jim", BASE)
    assert registry.list(search="nothing-like-it") == []
    assert registry.info("alice/jumpy").game == "Jumpy Jim"
    pulled = registry.pull("alice/jumpy", tmp_path / "pulled")
    assert (pulled / WEIGHTS_FILE).read_bytes() == (adapter / WEIGHTS_FILE).read_bytes()
    assert not (pulled / ".cache").exists()
    plays(pulled)
    cached = registry.pull("alice/jumpy")  # into the huggingface_hub cache
    assert (cached / WEIGHTS_FILE).read_bytes() == (adapter / WEIGHTS_FILE).read_bytes()
    with pytest.raises(RepoTakenError, match="alice/jumpy already exists .* pass --update"):
        registry.push(adapter, "jumpy", game="Jumpy Jim")
    with pytest.raises(AuthError, match="may not write to bob/jumpy"):
        registry.push(adapter, "bob/jumpy", game="Jumpy Jim")
    with pytest.raises(RegistryError, match="alice/missing was not found"):
        registry.pull("alice/missing", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    # the token travels only in the Authorization header, never in a path
    assert all(TOKEN not in path for _, path, _ in hub.requests)


def test_hub_push_without_a_token_uploads_nothing(adapter, hub):
    before = snapshot(adapter)
    with pytest.raises(AuthError, match="needs a Hugging Face token: run `huggingface-cli login` or set HF_TOKEN"):
        HubRegistry().push(adapter, "jumpy", game="g")
    assert hub.repos == {} and hub.requests == [] and snapshot(adapter) == before


def test_hub_pull_refuses_a_repo_that_is_not_an_adapter(tmp_path, hub):
    hub.repos["alice/model"] = {"README.md": b"---\nlibrary_name: pocketworld\n---\n", "config.json": b"{}"}
    with pytest.raises(AdapterError, match="lacks adapter_config.json"):
        HubRegistry().pull("alice/model", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()


def test_cli_push_list_pull(tmp_path, adapter, hub, monkeypatch, capsys):
    monkeypatch.setenv("POCKETWORLD_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.chdir(tmp_path)
    assert main(["push", str(adapter), "--repo", "jumpy", "--game", "Jumpy"]) == 0
    assert main(["hub", "list", "--json"]) == 0
    assert [e["repo"] for e in json.loads(capsys.readouterr().out.split("\n", 1)[1])] == ["local/jumpy"]
    assert main(["hub", "pull", "local/jumpy"]) == 0 and (tmp_path / "jumpy" / WEIGHTS_FILE).exists()
    assert main(["hub", "pull", "local/jumpy"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err

    assert main(["push", str(adapter), "--repo", "jumpy", "--registry", "hub", "--game", "Jumpy"]) == 2
    assert "needs a Hugging Face token" in capsys.readouterr().err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(adapter), "--repo", "jumpy", "--registry", "hub", "--game", "Jumpy"]) == 0
    assert main(["hub", "list", "--registry", "hub"]) == 0
    out, err = capsys.readouterr()
    assert "alice/jumpy  Jumpy" in out and TOKEN not in out + err
    assert main(["push", str(adapter), "--repo", "jumpy", "--registry", "hub", "--game", "Jumpy"]) == 2
    out, err = capsys.readouterr()
    assert "already exists" in err and TOKEN not in out + err
    assert TOKEN not in "".join(
        p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file() and "hf-home" not in p.parts
    )
