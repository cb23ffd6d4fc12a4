"""A selective state-space block (Mamba-2) in plain PyTorch, with the fused kernel on CUDA.

Follows Dao & Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality" (ICML 2024), and the `Mamba2` module of state-spaces/mamba.
Per head the recurrence is scalar-decay ("SSD"):

    h_t = exp(dt_t * A) h_t-1 + dt_t * x_t B_t^T        h: (headdim, d_state)
    y_t = h_t C_t + D * x_t

`ssd_scan` evaluates it for a whole sequence with matmuls (the chunked SSD algorithm); it is
the CPU training path. `ssd_step` is one step of it, for play; `ssd_scan_sequential` loops
`ssd_step` and is the oracle in the tests. On CUDA, `Mamba` calls mamba_ssm's
`mamba_chunk_scan_combined` instead of `ssd_scan` when it imports; it is imported lazily,
because `import mamba_ssm` fails on machines without CUDA.

B and C have one group shared by all heads, as in Mamba-2's default (ngroups=1), so they are
(batch, length, d_state) here; the kernel's (batch, length, ngroups, d_state) is B[:, :, None].
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def ssd_step(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    state: Tensor,
    D: Tensor | None = None,
    inplace: bool = False,
) -> tuple[Tensor, Tensor]:
    """One step of the recurrence. x (b, h, p), dt (b, h), A (h,), B and C (b, n),
    state (b, h, p, n) -> y (b, h, p), new state (b, h, p, n). `state` is not modified unless
    `inplace`, when the new state is written over it (and returned)."""
    b, h, p = x.shape
    n = B.shape[-1]
    decay = torch.exp(dt * A)  # (b, h)
    # Two passes over the state (decay, then the rank-1 update in place on the fresh tensor):
    # the state is the largest tensor in play, so passes over it are what a step costs.
    # In place saves more than a pass: a fresh multi-MB tensor per layer and step is new memory
    # the OS must fault in and zero, which made the decay ~10x slower than the addcmul after it.
    if inplace:
        new_state = state.mul_(decay[:, :, None, None])
    else:
        new_state = state * decay[:, :, None, None]  # (b, h, p, n)
    new_state.addcmul_((x * dt[:, :, None])[..., None], B[:, None, None, :])
    # The readout as (b, 1, n) @ (b, n, h*p): ~5x faster on CPU than the same product
    # written state @ C, which runs as b matrix-vector products.
    y = torch.bmm(C[:, None, :], new_state.view(b, h * p, n).mT).view(b, h, p)
    if D is not None:
        y = y + x * D[:, None]
    return y, new_state


def ssd_scan_sequential(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
):
    """The recurrence one timestep at a time (the test oracle). Same arguments as `ssd_scan`."""
    b, l, h, p = x.shape
    state = initial_state if initial_state is not None else x.new_zeros(b, h, p, B.shape[-1])
    ys = []
    for t in range(l):
        y, state = ssd_step(x[:, t], dt[:, t], A, B[:, t], C[:, t], state, D)
        ys.append(y)
    y = torch.stack(ys, dim=1)  # (b, l, h, p)
    return (y, state) if return_final_state else y


def _exp_segsum(cumulative: Tensor) -> Tensor:
    """(..., T) running sums s -> (..., T, T) lower-triangular exp(s_i - s_j), zero above."""
    T = cumulative.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=cumulative.device).tril()
    segsum = cumulative[..., :, None] - cumulative[..., None, :]
    # -inf above the diagonal, not 0 after the exp: there s_i - s_j > 0 and its exp may overflow.
    return torch.exp(segsum.masked_fill(~causal, -math.inf))


def ssd_scan(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int,
    D: Tensor | None = None,
    initial_state: Tensor | None = None,
    return_final_state: bool = False,
):
    """The chunked SSD scan (paper section 6), argument layout of mamba_ssm's
    `mamba_chunk_scan_combined` with one group.

    x (b, l, h, p); dt (b, l, h), already positive (softplus'ed); A (h,), negative;
    B and C (b, l, n); D (h,); initial_state (b, h, p, n).
    Returns y (b, l, h, p) [, final state (b, h, p, n)].

    Within a chunk of Q steps the output is a masked, decay-weighted attention (C B^T) done
    for all chunks at once; across chunks only the (h, p, n) state at each chunk boundary is
    carried, by a loop over the l/Q chunks. The largest tensor is those boundary states,
    (b, h, l/Q, p, n): per-step states (b, l, h, p, n) are never formed.
    """
    b, l, h, p = x.shape
    n = B.shape[-1]
    Q = chunk_size
    c = -(-l // Q)  # number of chunks
    pad = c * Q - l
    if pad:
        # dt = 0 on the padding makes those steps the identity: no decay, no input.
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, pad))
    x = x.reshape(b, c, Q, h, p).permute(0, 3, 1, 2, 4).contiguous()  # (b, h, c, Q, p)
    dt = dt.reshape(b, c, Q, h).permute(0, 3, 1, 2)  # (b, h, c, Q)
    B = B.reshape(b, 1, c, Q, n)  # shared by all heads
    C = C.reshape(b, 1, c, Q, n)
    log_decay = torch.cumsum(dt * A[:, None, None], dim=-1)  # (b, h, c, Q) from chunk start

    # 1. Inside each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(s_i - s_j) dt_j x_j  (+ D x_i,
    # which is one more diagonal term).
    scores = (C @ B.transpose(-1, -2)) * _exp_segsum(log_decay) * dt[..., None, :]  # (b, h, c, Q, Q)
    if D is not None:
        scores = scores + D[:, None, None, None] * torch.eye(Q, device=x.device, dtype=x.dtype)
    y = scores @ x  # (b, h, c, Q, p)

    # 2. What each chunk adds to the state at its end: sum_j x_j (exp(s_Q - s_j) dt_j B_j)^T.
    B_to_end = B * (torch.exp(log_decay[..., -1:] - log_decay) * dt)[..., None]  # (b, h, c, Q, n)
    chunk_states = x.mT @ B_to_end  # (b, h, c, p, n)
    chunk_decay = torch.exp(log_decay[..., -1])[..., None, None]  # (b, h, c, 1, 1)

    # 3. Carry the state across chunks; the state entering a chunk adds exp(s_i) C_i h^T there.
    C_from_start = C * torch.exp(log_decay)[..., None]  # (b, h, c, Q, n)
    state = initial_state if initial_state is not None else x.new_zeros(b, h, p, n)
    y_from_state = []
    for z in range(c):
        y_from_state.append(C_from_start[:, :, z] @ state.mT)  # (b, h, Q, p)
        state = torch.addcmul(chunk_states[:, :, z], state, chunk_decay[:, :, z])  # (b, h, p, n)
    y = y + torch.stack(y_from_state, dim=2)
    y = y.permute(0, 2, 3, 1, 4).reshape(b, c * Q, h, p)[:, :l]  # (b, l, h, p)
    return (y, state) if return_final_state else y


@functools.cache
def _fused_chunk_scan():
    """mamba_ssm's Triton SSD kernel, or None when mamba_ssm (or its CUDA build) is missing."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        return None
    return mamba_chunk_scan_combined


@dataclass
class MambaState:
    conv: Tensor  # (B, conv_dim, d_conv - 1) last inputs of the causal depthwise conv
    ssm: Tensor  # (B, nheads, headdim, d_state)


class RMSNormGated(nn.Module):
    """Mamba-2's output norm: RMSNorm(y * silu(z)) * weight (gate before the norm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        return F.rms_norm(y * F.silu(z), self.weight.shape, self.weight, self.eps)


class Mamba(nn.Module):
    """A Mamba-2 block: in_proj -> causal depthwise conv -> SSD scan -> gated norm -> out_proj.

    forward runs a whole sequence (training); step advances one token from a MambaState
    (play) in time and memory independent of how many steps came before.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        expand: int = 2,
        headdim: int = 32,
        d_conv: int = 4,
        chunk_size: int = 8,
        use_kernel: bool = True,
    ):
        super().__init__()
        self.d_inner = expand * d_model
        assert self.d_inner % headdim == 0, f"expand * d_model = {self.d_inner} must be a multiple of headdim {headdim}"
        assert d_conv >= 2, "d_conv must be at least 2 (the conv state holds d_conv - 1 inputs)"
        self.d_state, self.headdim, self.d_conv = d_state, headdim, d_conv
        self.nheads = self.d_inner // headdim
        self.conv_dim = self.d_inner + 2 * d_state  # x, B, C all go through the conv
        self.chunk_size = chunk_size  # the kernel wants a power of two; results don't depend on it
        self.use_kernel = use_kernel

        # One projection for the gate z, the conv inputs (x, B, C) and the per-head dt.
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * d_state + self.nheads, bias=False)
        # No padding: forward prepends the conv state (zeros for a fresh sequence) itself.
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim)

        # Mamba-2 init: dt log-uniform in [1e-3, 1e-1] through the inverse of softplus,
        # A uniform in [1, 16] (stored as log), skip connection D = 1.
        dt = torch.exp(torch.rand(self.nheads) * (math.log(1e-1) - math.log(1e-3)) + math.log(1e-3))
        dt = dt.clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))

        self.norm = RMSNormGated(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def init_state(self, batch: int, device=None, dtype=None) -> MambaState:
        return MambaState(
            conv=torch.zeros(batch, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
            ssm=torch.zeros(batch, self.nheads, self.headdim, self.d_state, device=device, dtype=dtype),
        )

    def _scan(self, x: Tensor):
        """The fused kernel when it applies, else our matmul scan (same signature)."""
        kernel = _fused_chunk_scan() if (x.is_cuda and self.use_kernel) else None
        if kernel is None:
            return ssd_scan

        def fused(x, dt, A, B, C, chunk_size, D=None, initial_state=None, return_final_state=False):
            return kernel(
                x,
                dt,
                A,
                B[:, :, None],
                C[:, :, None],
                chunk_size,
                D=D,
                initial_states=initial_state,
                return_final_states=return_final_state,
            )

        return fused

    def forward(self, x: Tensor, initial_state: MambaState | None = None, return_state: bool = False):
        """x (B, L, d_model) -> y (B, L, d_model) [, MambaState after the last token]."""
        batch, L, _ = x.shape
        z, xBC, dt = self.in_proj(x).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)

        xBC = xBC.transpose(1, 2)  # (B, conv_dim, L)
        if initial_state is None:
            xBC = F.pad(xBC, (self.d_conv - 1, 0))
        else:
            xBC = torch.cat([initial_state.conv, xBC], dim=-1)  # (B, conv_dim, d_conv-1 + L)
        # A copy, not a view: a view would keep the whole (B, conv_dim, L) input alive in the state.
        conv_state = xBC[:, :, -(self.d_conv - 1) :].clone()
        xBC = F.silu(self.conv1d(xBC)).transpose(1, 2)  # (B, L, conv_dim)
        xs, B, C = xBC.split([self.d_inner, self.d_state, self.d_state], dim=-1)

        dt = F.softplus(dt + self.dt_bias)  # (B, L, nheads)
        A = -torch.exp(self.A_log)  # (nheads,)
        y, ssm_state = self._scan(x)(
            xs.reshape(batch, L, self.nheads, self.headdim),
            dt,
            A,
            B,
            C,
            self.chunk_size,
            D=self.D,
            initial_state=None if initial_state is None else initial_state.ssm,
            return_final_state=True,
        )
        y = self.out_proj(self.norm(y.reshape(batch, L, self.d_inner), z))  # (B, L, d_model)
        return (y, MambaState(conv=conv_state, ssm=ssm_state)) if return_state else y

    def step(self, x: Tensor, state: MambaState, inplace: bool = False) -> tuple[Tensor, MambaState]:
        """x (B, d_model) -> y (B, d_model), the state after it. `state` is not modified unless
        `inplace` (for a caller that owns it, like a play session: its large ssm tensor is reused)."""
        batch = x.shape[0]
        z, xBC, dt = self.in_proj(x).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)

        # The depthwise conv over the last d_conv inputs, as d_conv multiply-adds on (B, conv_dim)
        # slices: several times faster on CPU than conv1d or a product-sum over a (B, conv_dim, d_conv) window.
        weight = self.conv1d.weight[:, 0]  # (conv_dim, d_conv)
        conv_state = torch.stack([*state.conv[:, :, 1:].unbind(-1), xBC], dim=-1)  # (B, conv_dim, d_conv-1)
        xBC = torch.addcmul(self.conv1d.bias, xBC, weight[:, -1])
        for k in range(self.d_conv - 1):
            xBC.addcmul_(state.conv[:, :, k], weight[:, k])
        xBC = F.silu(xBC)  # (B, conv_dim)
        xs, B, C = xBC.split([self.d_inner, self.d_state, self.d_state], dim=-1)

        dt = F.softplus(dt + self.dt_bias)  # (B, nheads)
        A = -torch.exp(self.A_log)
        y, ssm_state = ssd_step(
            xs.view(batch, self.nheads, self.headdim), dt, A, B, C, state.ssm, self.D, inplace=inplace
        )
        y = self.out_proj(self.norm(y.view(batch, self.d_inner), z))  # (B, d_model)
        return y, MambaState(conv=conv_state, ssm=ssm_state)
