"""Play engines (core.engine): every precision and decoder backend runs and stays close to the
plain fp32 path; bad options are clear errors; the bench reports the quality fields."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from core.engine import EngineConfig, EngineError, prepare
from core.session import WorldSession
from core.world_model import WorldModel
from tests.conftest import tiny_config
from tests.synthetic import sprite_frames

HAS_ONNX = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime/onnx not installed (the `onnx` extra)")
ACTIONS = [3, 4, 11, 0, 1, 17, 5, 5, 2, 9]


@pytest.fixture(scope="module")
def model():
    """Random weights made non-trivial: the decoder's zero-initialised output layer perturbed (else
    every frame is the start frame), and the logits sharpened as a trained model's are (random
    ones are near-ties, where any rounding flips an argmax)."""
    torch.manual_seed(0)
    model = WorldModel(tiny_config()).eval()
    with torch.no_grad():
        model.decoder.to_rgb.weight.normal_(std=0.1)
        model.dynamics.head.weight.mul_(20)
    return model


def rollout(model, engine):
    session = WorldSession(model, engine=engine)
    session.reset(sprite_frames(1)[0])
    frames, tokens = [], []
    for action in ACTIONS:
        frames.append(session.step(action))
        tokens.append(session._tokens.clone())
    return np.stack(frames).astype(np.float64), torch.stack(tokens)


def psnr(a, b):
    mse = ((a - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize(
    "name, min_psnr, min_agreement",
    [
        ("fp32", 60, 1.0),
        ("bf16", 30, 0.9),
        ("int8", 30, 0.9),
        pytest.param("fp32+onnx", 60, 1.0, marks=needs_onnx),
        pytest.param("int8+onnx", 30, 0.9, marks=needs_onnx),
    ],
)
def test_each_engine_runs_and_stays_close_to_fp32(model, name, min_psnr, min_agreement):
    reference_frames, reference_tokens = rollout(model, None)
    frames, tokens = rollout(model, EngineConfig.parse(name))
    assert frames.shape == reference_frames.shape
    assert reference_frames.std(axis=0).mean() > 1, "the rollout must change frames for PSNR to mean anything"
    assert psnr(frames, reference_frames) >= min_psnr
    # the first step's tokens come from the same inputs; later ones drift apart once one differs
    assert (tokens[0] == reference_tokens[0]).float().mean().item() >= min_agreement


def test_prepare_copies_once_per_model_and_leaves_the_model_alone(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    int8 = prepare(model, EngineConfig("int8"))
    assert prepare(model, EngineConfig("int8")) is int8  # sessions of one model share one prepared copy
    assert isinstance(model.dynamics.head, torch.nn.Linear) and not isinstance(int8.dynamics.head, torch.nn.Linear)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_in_place_steps_equal_fresh_state_steps(model):
    dynamics, tokens = model.dynamics, torch.randint(0, 512, (1, 256))
    fresh, owned = dynamics.init_state(1), dynamics.init_state(1)
    with torch.inference_mode():
        for action in ACTIONS[:4]:
            logits, fresh = dynamics.step(tokens, torch.tensor([action]), fresh)
            owned_logits, owned = dynamics.step(tokens, torch.tensor([action]), owned, inplace=True)
            assert torch.equal(logits, owned_logits)
    assert all(torch.equal(a.ssm, b.ssm) for a, b in zip(fresh.layers, owned.layers))


@pytest.mark.parametrize(
    "name, message",
    [
        ("fp16", r"unknown precision 'fp16'; choose one of fp32, bf16, int8, nf4"),
        ("int8+tensorrt", r"unknown decoder backend 'tensorrt'; choose one of torch, onnx"),
    ],
)
def test_unknown_engine_names_are_clear_errors(name, message):
    with pytest.raises(EngineError, match=message):
        EngineConfig.parse(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error given without CUDA")
def test_nf4_without_cuda_says_it_needs_cuda(model):
    with pytest.raises(EngineError, match="nf4 .*needs CUDA; on CPU use int8 or fp32"):
        WorldSession(model, engine=EngineConfig("nf4"))


def test_onnx_decoder_without_onnxruntime_says_what_to_install(model, monkeypatch):
    from core.decoder_onnx import OnnxFrameDecoder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(EngineError, match=r"pip install 'pocketworld\[onnx\]'"):
        OnnxFrameDecoder(model.decoder, model.config, threads=1)


def test_bench_play_reports_speed_and_quality_per_engine(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "play",
                "--variant",
                "nano",
                "--precision",
                "fp32,int8",
                "--steps",
                "2",
                "--warmup",
                "0",
                "--quality-steps",
                "2",
                "--threads",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    assert [r["precision"] for r in results] == ["fp32", "int8"]
    for result in results:
        assert set(result) >= {
            "variant",
            "precision",
            "threads",
            "fps",
            "latency_ms_p50",
            "latency_ms_p95",
            "peak_rss_mb",
            "psnr_vs_fp32",
            "token_agreement",
            "quality_steps",
            "prepare_s",
            "weights",
        }
        assert result["fps"] > 0 and result["peak_rss_mb"] > 0
        assert result["token_agreement"] is None  # nano is a frames model: no token ids to agree
    table = capsys.readouterr().out
    assert "PSNR vs fp32" in table and "int8" in table


def test_bench_play_unknown_precision_is_a_one_line_error(capsys):
    from core.cli import main

    assert main(["bench", "play", "--precision", "fp16"]) == 2
    assert "unknown precision 'fp16'" in capsys.readouterr().err


class _FakeBitsandbytes:
    """bitsandbytes' layer API on CPU, as plain Linear maths: enough to see which layers one swap replaces
    and that they carry the same weights (the real layers need CUDA)."""

    class nn:
        class Linear8bitLt(torch.nn.Linear):
            def __init__(self, fan_in, fan_out, bias=True, has_fp16_weights=True, threshold=0.0):
                super().__init__(fan_in, fan_out, bias)
                self.threshold = threshold

        class Linear4bit(torch.nn.Linear):
            def __init__(self, fan_in, fan_out, bias=True, compute_dtype=None, quant_type="fp4"):
                super().__init__(fan_in, fan_out, bias)
                self.quant_type = quant_type

        @staticmethod
        def Int8Params(data, requires_grad, has_fp16_weights):
            return torch.nn.Parameter(data, requires_grad=requires_grad)

        @staticmethod
        def Params4bit(data, requires_grad, quant_type):
            return torch.nn.Parameter(data, requires_grad=requires_grad)


def test_play_engines_and_qlora_share_one_bitsandbytes_swap(model, monkeypatch):
    from core.engine import bitsandbytes_linears
    from finetune.quantize import quantize_dynamics

    monkeypatch.setitem(sys.modules, "bitsandbytes", _FakeBitsandbytes)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    tokens, actions = torch.randint(0, 512, (1, 3, 256)), torch.randint(0, 18, (1, 3))
    with torch.no_grad():
        expected = model.dynamics(tokens, actions)
    kbit = (_FakeBitsandbytes.nn.Linear8bitLt, _FakeBitsandbytes.nn.Linear4bit)

    play = WorldModel(model.config)
    play.load_state_dict(model.state_dict())
    bitsandbytes_linears(play.dynamics, 4, "cpu")  # play's nf4 engine: every Linear, the head too
    assert not any(type(m) is torch.nn.Linear for m in play.dynamics.modules())
    assert all(m.quant_type == "nf4" for m in play.dynamics.modules() if isinstance(m, kbit))

    base = WorldModel(model.config)
    base.load_state_dict(model.state_dict())
    dynamics = quantize_dynamics(base.dynamics, "8bit", device="cpu")  # QLoRA's base: the blocks, not the head
    swapped = [m for m in dynamics.modules() if isinstance(m, kbit)]
    assert swapped and all(isinstance(m, _FakeBitsandbytes.nn.Linear8bitLt) and m.threshold == 6.0 for m in swapped)
    assert type(dynamics.head) is torch.nn.Linear and dynamics.is_loaded_in_8bit
    assert not any(p.requires_grad for m in swapped for p in m.parameters())
    with torch.no_grad():  # same weights in the new layers: the same outputs, up to float32 rounding (outputs reach
        # 50, and the order of a matmul's sums differs between runs on some CPUs: 1.7e-5 apart was seen)
        assert torch.allclose(play.dynamics(tokens, actions), expected, atol=1e-4)
        assert torch.allclose(dynamics(tokens, actions), expected, atol=1e-4)
