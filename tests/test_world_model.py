import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.config import ConfigError, DynamicsConfig, WorldModelConfig
from core.world_model import WeightsError, WorldModel
from tests.conftest import tiny_config


def saved(tmp_path, config=None, dtype="fp32"):
    torch.manual_seed(0)
    model = WorldModel(config or tiny_config())
    model.save_pretrained(tmp_path, dtype=dtype)
    return model


def test_round_trip_restores_config_as_dataclasses_and_weights_exactly(tmp_path):
    model = saved(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    loaded = WorldModel.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert isinstance(loaded.config.dynamics, DynamicsConfig)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not loaded.training


def test_a_zoo_variant_by_name_or_hub_id_loads_the_installed_weights_and_an_unreachable_repo_says_so(
    tmp_path, monkeypatch
):
    """The card's snippet, WorldModel.from_pretrained("pocketworld/nano"), works outside the repository from the
    installed zoo (it went to the Hub and failed with a LocalEntryNotFoundError traceback); a repo the Hub cannot
    give is a FileNotFoundError saying what to pass instead."""
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    model = saved(tmp_path / "nano")
    monkeypatch.chdir(tmp_path / "nano")  # no folder named nano or pocketworld/nano here
    for name in ("nano", "pocketworld/nano"):
        loaded = WorldModel.from_pretrained(name)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(FileNotFoundError, match="could not be fetched from the Hugging Face Hub.*a zoo variant"):
        WorldModel.from_pretrained("pocketworld/tiny", local_files_only=True)  # tiny's weights are not installed


@pytest.mark.parametrize("dtype, torch_dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_storage_halves_the_file_and_loads_as_fp32(tmp_path, dtype, torch_dtype):
    model = saved(tmp_path, dtype=dtype)
    stored = load_file(tmp_path / "model.safetensors")
    assert all(t.dtype == torch_dtype for t in stored.values() if t.is_floating_point())
    loaded = WorldModel.from_pretrained(tmp_path)
    weight = loaded.dynamics.head.weight
    assert weight.dtype == torch.float32
    assert torch.allclose(weight, model.dynamics.head.weight, rtol=1e-2, atol=1e-3)


def test_unknown_storage_dtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown storage dtype 'int3'"):
        WorldModel(tiny_config()).save_pretrained(tmp_path, dtype="int3")


def test_missing_tensor_is_named(tmp_path):
    saved(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["dynamics.head.bias"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(WeightsError, match=r"missing \['dynamics.head.bias'\]"):
        WorldModel.from_pretrained(tmp_path)


def test_unexpected_tensor_is_named(tmp_path):
    saved(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["dynamics.extra"] = torch.zeros(3)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(WeightsError, match=r"unexpected \['dynamics.extra'\]"):
        WorldModel.from_pretrained(tmp_path)


def test_weights_of_another_variant_name_the_mismatched_tensor(tmp_path):
    other = tmp_path / "other"
    saved(other, tiny_config(d_model=48, n_heads=3))  # same layout, other width
    saved(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(WeightsError, match=r"tensor '.*' has shape .* another variant"):
        WorldModel.from_pretrained(tmp_path)


def test_malformed_config_json_is_an_error_naming_the_file(tmp_path):
    saved(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        WorldModel.from_pretrained(tmp_path)
    data = tiny_config().to_dict()
    data["decoder"]["channel"] = [1]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['channel'\]"):
        WorldModel.from_pretrained(tmp_path)


def test_a_folder_without_weights_says_what_it_needs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        WorldModel.from_pretrained(tmp_path)


def test_corrupt_weights_file_is_an_error_not_a_crash(tmp_path):
    saved(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        WorldModel.from_pretrained(tmp_path)


def test_saving_over_an_existing_model_never_leaves_a_partial_file(tmp_path, monkeypatch):
    saved(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()
    import core.world_model as world_model

    def broken_save(tensors, path):
        open(path, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(world_model, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        WorldModel(tiny_config()).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_config_is_checked_against_itself():
    with pytest.raises(ConfigError, match="does not match the tokenizer"):
        WorldModelConfig(dynamics=DynamicsConfig(tokens_per_frame=64))
