"""LoRA adapters: the default targets, standard peft files, exact round trips, merging, and an
adapter that does not fit its model refused with a message that says why."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from core.session import WorldSession
from core.world_model import WorldModel
from finetune.lora import (
    CONFIG_FILE,
    DEFAULT_TARGETS,
    WEIGHTS_FILE,
    AdapterError,
    LoraSettings,
    add_lora,
    load_adapter,
    merge_adapter,
    save_adapter,
    trainable_parameters,
    validate_adapter,
)

BASE = "test-tiny"


def base_model(seed: int = 0, **dynamics) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(tiny_config(**dynamics)).eval()


def adapted(tmp_path, rank: int = 4):
    """A base model, and an adapter for it with non-zero updates (peft starts lora_B at zero), saved to
    tmp_path/adapter."""
    model = add_lora(base_model(), BASE, LoraSettings(rank=rank))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.2)
    save_adapter(model, tmp_path / "adapter")
    return model.eval(), tmp_path / "adapter"


def clip(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 512, (1, 3, 256), generator=generator), torch.randint(0, 18, (1, 3), generator=generator)


def test_defaults_target_linear_projections_only_and_freeze_the_rest():
    model = add_lora(base_model(), BASE)
    wrapped = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}
    assert wrapped == set(DEFAULT_TARGETS)
    assert not any("conv1d" in name and "lora" in name for name, _ in model.named_parameters())
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert trainable_parameters(model) < 0.1 * sum(p.numel() for p in model.parameters())


def test_bad_targets_are_refused():
    with pytest.raises(AdapterError, match="conv1d' is a Conv1d; only Linear layers"):
        add_lora(base_model(), BASE, LoraSettings(targets=("conv1d",)))
    with pytest.raises(AdapterError, match="'to_qq' names no layer"):
        add_lora(base_model(), BASE, LoraSettings(targets=("to_qq",)))
    with pytest.raises(ValueError, match="rank must be >= 1"):
        LoraSettings(rank=0)


def test_saved_files_are_standard_peft_with_our_base(tmp_path):
    _, folder = adapted(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["base_model_name_or_path"] == BASE and config["peft_type"] == "LORA" and config["r"] == 4
    with pytest.raises(FileExistsError, match="never overwritten"):
        save_adapter(adapted(tmp_path / "again")[0], folder)


def test_load_matches_trained_and_merged_matches_unmerged(tmp_path):
    trained, folder = adapted(tmp_path)
    tokens, actions = clip()
    with torch.no_grad():
        expected = trained.dynamics(tokens, actions)
        plain = base_model().dynamics(tokens, actions)
        loaded = load_adapter(base_model(), folder, base=BASE)
        unmerged = loaded.dynamics(tokens, actions)
        merged = merge_adapter(loaded).dynamics(tokens, actions)
    assert (expected - plain).abs().max() > 1e-2  # the adapter changes the model...
    torch.testing.assert_close(unmerged, expected, atol=1e-5, rtol=1e-5)  # ...reloads exactly...
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=1e-4)  # ...and merges into the same function
    assert not any("lora" in name for name, _ in loaded.named_parameters())


def test_an_adapted_model_plays(tmp_path):
    _, folder = adapted(tmp_path)
    session = WorldSession(load_adapter(base_model(), folder, base=BASE))
    first = session.reset(np.zeros((256, 256, 3), np.uint8))
    frame = session.step("LEFT")
    assert frame.shape == first.shape == (256, 256, 3) and frame.dtype == np.uint8


def test_modified_adapters_are_rejected(tmp_path):
    _, folder = adapted(tmp_path)
    tensors = load_file(folder / WEIGHTS_FILE)
    name = next(n for n in tensors if n.endswith("lora_A.weight"))

    def expect(message):
        with pytest.raises(AdapterError, match=message):
            load_adapter(base_model(), folder, base=BASE)

    save_file({**tensors, name: torch.zeros(3, tensors[name].shape[1])}, folder / WEIGHTS_FILE)
    expect(r"has shape \(3, .*\), the model needs \(4, ")
    save_file({k: v for k, v in tensors.items() if k != name}, folder / WEIGHTS_FILE)
    expect("missing \\['base_model.model.blocks")
    save_file({**tensors, name: torch.full_like(tensors[name], float("nan"))}, folder / WEIGHTS_FILE)
    expect("is not finite")
    (folder / WEIGHTS_FILE).write_bytes(b"garbage")
    expect("not a readable safetensors file")
    save_file(tensors, folder / WEIGHTS_FILE)

    config = json.loads((folder / CONFIG_FILE).read_text())
    for change, message in [
        ({"r": "4"}, "r must be a positive whole number"),
        ({"peft_type": "IA3"}, "peft_type is 'IA3'"),
        ({"base_model_name_or_path": None}, "base model is unknown"),
        ({"use_dora": True}, "only plain LoRA"),
        ({"secret_field": 1}, r"unknown field\(s\) \['secret_field'\]"),
    ]:
        (folder / CONFIG_FILE).write_text(json.dumps({**config, **change}))
        expect(message)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(AdapterError, match="trained on 'test-tiny', not on 'nano'"):
        load_adapter(base_model(), folder, base="nano")
    with pytest.raises(AdapterError, match="an adapter for another"):
        validate_adapter(folder, base_model(d_model=64))  # another variant: other widths
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    expect("holds pickle files \\(adapter_model.bin\\)")
