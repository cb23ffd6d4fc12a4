"""The Mamba-2 block: stepping equals the sequence forward, the chunked scan equals the plain
recurrence (values and gradients), the CUDA kernel equals our scan, and import stays CPU-safe."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.mamba import Mamba, MambaState, _fused_chunk_scan, ssd_scan, ssd_scan_sequential

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(2)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def tiny_block(**kwargs) -> Mamba:
    return Mamba(d_model=32, d_state=8, expand=2, headdim=16, d_conv=4, chunk_size=8, **kwargs)


def random_scan_inputs(b=2, l=13, h=3, p=4, n=5, dtype=torch.float64, device="cpu"):
    """Inputs in the ranges the block produces: dt positive, A negative."""
    kw = dict(dtype=dtype, device=device)
    return dict(
        x=torch.randn(b, l, h, p, **kw),
        dt=F.softplus(torch.randn(b, l, h, **kw) - 1),
        A=-torch.empty(h, **kw).uniform_(1, 16),
        B=torch.randn(b, l, n, **kw),
        C=torch.randn(b, l, n, **kw),
        D=torch.randn(h, **kw),
        initial_state=torch.randn(b, h, p, n, **kw),
    )


@pytest.mark.parametrize("L", [16, 13])
def test_step_equals_forward(L):
    block = tiny_block()
    x = torch.randn(3, L, 32)
    with torch.no_grad():
        y_seq, state_seq = block(x, return_state=True)
        state = block.init_state(3)
        y_step = []
        for t in range(L):
            y_t, state = block.step(x[:, t], state)
            y_step.append(y_t)
    assert rel_err(torch.stack(y_step, dim=1), y_seq) < 1e-5
    assert rel_err(state.ssm, state_seq.ssm) < 1e-5
    assert rel_err(state.conv, state_seq.conv) < 1e-6  # in_proj on 1 vs L rows: rounding differs


@pytest.mark.parametrize("k", [2, 8, 11])
def test_forward_resumes_from_state(k):
    block = tiny_block()
    x = torch.randn(2, 13, 32)
    with torch.no_grad():
        y_full, state_full = block(x, return_state=True)
        y_head, state_head = block(x[:, :k], return_state=True)
        y_tail, state_tail = block(x[:, k:], initial_state=state_head, return_state=True)
    assert rel_err(torch.cat([y_head, y_tail], dim=1), y_full) < 1e-5
    assert rel_err(state_tail.ssm, state_full.ssm) < 1e-5
    assert rel_err(state_tail.conv, state_full.conv) < 1e-6


@pytest.mark.parametrize("chunk_size", [1, 4, 8, 16])
def test_ssd_scan_equals_sequential(chunk_size):
    inputs = random_scan_inputs(l=13)
    y, final = ssd_scan(**inputs, chunk_size=chunk_size, return_final_state=True)
    y_ref, final_ref = ssd_scan_sequential(**inputs, return_final_state=True)
    assert rel_err(y, y_ref) < 1e-12
    assert rel_err(final, final_ref) < 1e-12


def test_ssd_scan_without_optional_inputs():
    inputs = random_scan_inputs(l=10)
    del inputs["D"], inputs["initial_state"]
    assert rel_err(ssd_scan(**inputs, chunk_size=4), ssd_scan_sequential(**inputs)) < 1e-12


def test_ssd_scan_gradients_equal_sequential():
    inputs = random_scan_inputs(l=11)
    grad_y = torch.randn_like(inputs["x"])
    grad_final = torch.randn_like(inputs["initial_state"])

    def gradients(scan, **extra):
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
        y, final = scan(**leaves, return_final_state=True, **extra)
        ((y * grad_y).sum() + (final * grad_final).sum()).backward()
        return {k: v.grad for k, v in leaves.items()}

    got, want = gradients(ssd_scan, chunk_size=4), gradients(ssd_scan_sequential)
    for name in inputs:
        assert rel_err(got[name], want[name]) < 1e-10, name


def test_state_has_constant_size():
    block = tiny_block()
    state = block.init_state(2)
    shapes = (tuple(state.conv.shape), tuple(state.ssm.shape))
    assert shapes == ((2, block.conv_dim, 3), (2, block.nheads, 16, 8))
    with torch.no_grad():
        for _ in range(20):
            _, state = block.step(torch.randn(2, 32), state)
            assert (tuple(state.conv.shape), tuple(state.ssm.shape)) == shapes
            assert state.conv.untyped_storage().nbytes() == state.conv.numel() * 4
            assert state.ssm.untyped_storage().nbytes() == state.ssm.numel() * 4
        for L in (1, 5, 30):
            _, state = block(torch.randn(2, L, 32), return_state=True)
            assert (tuple(state.conv.shape), tuple(state.ssm.shape)) == shapes
            assert state.conv.untyped_storage().nbytes() == state.conv.numel() * 4


def test_step_does_not_modify_state():
    block = tiny_block()
    with torch.no_grad():
        _, state = block(torch.randn(2, 5, 32), return_state=True)
        before = MambaState(conv=state.conv.clone(), ssm=state.ssm.clone())
        block.step(torch.randn(2, 32), state)
    assert torch.equal(state.conv, before.conv) and torch.equal(state.ssm, before.ssm)


def test_init_follows_mamba2():
    block = Mamba(d_model=64, headdim=16)
    A = torch.exp(block.A_log)
    dt = F.softplus(block.dt_bias)
    assert A.min() >= 1 and A.max() <= 16
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    assert torch.equal(block.D, torch.ones(block.nheads))
    names = dict(block.named_modules())
    assert isinstance(names["in_proj"], torch.nn.Linear) and isinstance(names["out_proj"], torch.nn.Linear)


def test_import_does_not_load_mamba_ssm():
    code = (
        "import sys, torch\n"
        "import core.mamba\n"
        "core.mamba.Mamba(16, headdim=8)(torch.randn(1, 3, 16))\n"
        "assert 'mamba_ssm' not in sys.modules, 'core.mamba imported mamba_ssm'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.gpu
def test_cuda_kernel_equals_reference():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: the mamba_ssm kernel runs only there")
    if _fused_chunk_scan() is None:
        pytest.skip("mamba_ssm is not installed (pip install -e '.[cuda]')")
    # The kernel's fp32 matmuls may run in TF32, hence a looser bound than on CPU.
    inputs = random_scan_inputs(b=2, l=37, h=4, p=32, n=16, dtype=torch.float32, device="cuda")
    x, dt, A, B, C, D, h0 = (inputs[k] for k in ("x", "dt", "A", "B", "C", "D", "initial_state"))
    y_ref, final_ref = ssd_scan(x, dt, A, B, C, 8, D=D, initial_state=h0, return_final_state=True)
    for chunk_size in (8, 16, 64):
        y, final = _fused_chunk_scan()(
            x, dt, A, B[:, :, None], C[:, :, None], chunk_size, D=D, initial_states=h0, return_final_states=True
        )
        assert rel_err(y, y_ref) < 5e-3
        assert rel_err(final, final_ref) < 5e-3

    block = tiny_block().cuda()
    xs = torch.randn(4, 21, 32, device="cuda")
    with torch.no_grad():
        y_kernel, state_kernel = block(xs, return_state=True)
        block.use_kernel = False
        y_torch, state_torch = block(xs, return_state=True)
    assert rel_err(y_kernel, y_torch) < 5e-3
    assert rel_err(state_kernel.ssm, state_torch.ssm) < 5e-3
