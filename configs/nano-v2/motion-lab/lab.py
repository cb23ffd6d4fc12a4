"""Lab (README "Moving pixels instead of drawing them"): a dynamics that classifies each 4x4 block's whole-pixel
move of the previous full frame, within 6 px, or "redraw" (sharp by construction: the most likely move of copied
pixels), grown on the shipped nano's dynamics U-Net (its trunk and keys; a new head), trained for a wall-clock
budget on the nano v2 shards, each block's target the set of moves within TOL of the best block match (the
labels cost a summed-difference per move, on one colour-weighted channel). Arms (env ARM): A reads what the
dynamics reads (2 small frames, the keys); B also the denoiser's own next small frame; C only what an upsampler
has (the last small frame and the denoiser's next one, no keys).
    ARM=A [LR=5e-4] python configs/nano-v2/motion-lab/lab.py MINUTES [WEIGHTS to go on from [DATA SEED]]  # -> runs/
"""

import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.actions import NUM_ACTIONS
from core.frame_dynamics import recent_actions
from core.frames import to_model
from core.train.data import ClipBatches, index_shards
from core.world_model import WorldModel

# the interim nano v2 without a motion net (configs/nano-v2/ship.sh makes it): what the arms grow on
BASE = os.environ.get("BASE", "runs/v2-candidate")
R, BLOCK = 6, 4
MOVES = [(dx, dy) for dy in range(-R, R + 1) for dx in range(-R, R + 1)]
NM = len(MOVES)  # + 1 "redraw" class
TOL, REDRAW = 0.03, 0.15  # per-pixel mean |luma diff| ([-1,1] units summed over 3 channels /3)


def shifted(prev, dx, dy):
    """next[y, x] = prev[y - dy, x - dx], replicate at the border."""
    H, W = prev.shape[-2:]
    pad = F.pad(prev, (R, R, R, R), mode="replicate")
    return pad[..., R - dy : R - dy + H, R - dx : R - dx + W]


@torch.no_grad()
def block_costs(prev, nxt):
    """prev, nxt (B,3,H,W) -> (B, NM, H/BLOCK, W/BLOCK) mean |diff| per block per move (all 3 channels)."""
    w = torch.tensor([1.0, 2.3, 4.1]) / 7.4  # one channel, weights that few colour pairs alias under
    prev, nxt = (x.mul(w[:, None, None]).sum(1, keepdim=True) for x in (prev, nxt))
    out = []
    for dx, dy in MOVES:
        out.append(F.avg_pool2d((shifted(prev, dx, dy) - nxt).abs(), BLOCK))
    return torch.cat(out, 1)


def warp(prev, moves):
    """prev (B,3,H,W), moves (B, H/BLOCK, W/BLOCK) move ids -> (B,3,H,W)."""
    B, _, H, W = prev.shape
    out = torch.zeros_like(prev)
    up = moves.repeat_interleave(BLOCK, 1).repeat_interleave(BLOCK, 2)[:, None]  # (B,1,H,W)
    for i, (dx, dy) in enumerate(MOVES):
        m = up == i
        if m.any():
            out = torch.where(m, shifted(prev, dx, dy), out)
    return out


class MotionDynamics(nn.Module):
    def __init__(self, dyn, dreamed_input=False, blind=False):
        super().__init__()
        self.dyn = dyn
        self.blind = blind
        self.dreamed_input = dreamed_input
        if dreamed_input:  # the denoiser's predicted next small frame as 3 more input channels, starting at zero
            old = dyn.stem
            dyn.stem = nn.Conv2d(old.in_channels + 3, old.out_channels, 3, padding=1)
            with torch.no_grad():
                dyn.stem.weight.zero_()
                dyn.stem.weight[:, : old.in_channels] = old.weight
                dyn.stem.bias.copy_(old.bias)
        c0 = dyn.config.channels[0]
        self.head = nn.Sequential(nn.Conv2d(c0, 64, 3, padding=1), nn.SiLU(), nn.Conv2d(64, NM + 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        with torch.no_grad():
            self.head[-1].bias.zero_()
            self.head[-1].bias[MOVES.index((0, 0))] = 2.0

    def forward(self, context, recent, dreamed=None):
        d = self.dyn
        if self.blind:  # arm C: what an upsampler has -- the last frame and the dreamed next one, no keys
            context = context[:, -1:].expand(-1, context.shape[1], -1, -1, -1)
            recent = torch.full_like(recent, NUM_ACTIONS)
        action = d.embed_actions(recent)
        inputs = context.flatten(1, 2)
        if self.dreamed_input:
            inputs = torch.cat([inputs, dreamed], 1)
        h = d.trunk(d.stem(inputs), action)  # (B, c0, 64, 64)
        if BLOCK != 4:
            h = F.avg_pool2d(h, BLOCK // 4)
        return self.head(h)  # (B, NM+1, 64, 64)


def targets(prev, nxt):
    """-> acceptable (B, NM+1, g, g) bool: moves within TOL of the best; redraw where the best is > REDRAW."""
    costs = block_costs(prev, nxt)
    best = costs.min(1, keepdim=True).values
    ok = costs <= best + TOL
    redraw = best > REDRAW
    ok = ok & ~redraw
    return torch.cat([ok, redraw], 1)


MOVING_WEIGHT = 20.0


def set_loss(logits, ok):
    lse = torch.logsumexp(logits, 1)
    good = torch.logsumexp(logits.masked_fill(~ok, -1e4), 1)
    weight = 1 + MOVING_WEIGHT * (~ok[:, MOVES.index((0, 0))]).float()
    return ((lse - good) * weight).sum() / weight.sum()


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30
    arm = os.environ.get("ARM", "A")
    model = WorldModel.from_pretrained(BASE)
    pool = model.tokenizer
    dreamer = WorldModel.from_pretrained(BASE).dynamics.eval().requires_grad_(False) if arm in "BC" else None
    md = MotionDynamics(model.dynamics, dreamed_input=arm in "BC", blind=arm == "C")
    if len(sys.argv) > 2:
        md.load_state_dict(load_file(sys.argv[2]))
    games = ["maze", "platformer", "shooter"]
    refs = index_shards([f"shards/v2/{g}-held" for g in games], "gameplay", None)
    c = model.dynamics.config.context
    L = c + 4
    batches = ClipBatches(refs, L, 2, 24, 8, seed=int(sys.argv[3]) if len(sys.argv) > 3 else 1 + (len(sys.argv) > 2))
    opt = torch.optim.AdamW(md.parameters(), lr=float(os.environ.get("LR", 5e-4)), weight_decay=1e-4)
    log = open(f"runs/motion-lab/train{arm}.jsonl", "a")
    start, step = time.time(), 0
    k = model.dynamics.config.action_context
    while time.time() - start < minutes * 60:
        batch = next(batches)
        b = batch["frames"].shape[0]
        full = to_model(batch["frames"]).view(b, L, 3, 256, 256)
        small = pool.encode(full.flatten(0, 1)).view(b, L, 3, 64, 64)
        ctx, rec, ok, dreamed = [], [], [], []
        for u in range(L - c):
            t = c - 1 + u
            noise = 0.03 * torch.rand(b, 1, 1, 1, 1) * torch.randn(b, c, 3, 64, 64)
            ctx.append(small[:, t - c + 1 : t + 1] + noise)
            rec.append(recent_actions(batch["actions"], t, k))
            if dreamer is not None:
                with torch.no_grad():
                    dreamed.append(dreamer.predict(small[:, t - c + 1 : t + 1], rec[-1]).clamp(-1, 1))
            ok.append(targets(full[:, t], full[:, t + 1]))
        logits = md(torch.cat(ctx), torch.cat(rec), torch.cat(dreamed) if dreamed else None)
        ok = torch.cat(ok)
        loss = set_loss(logits, ok)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 10 == 0:
            with torch.no_grad():
                hit = ok.gather(1, logits.argmax(1, keepdim=True)).float().mean().item()
                moving = ~ok[:, MOVES.index((0, 0))]
                hit_moving = (ok.gather(1, logits.argmax(1, keepdim=True))[:, 0] & moving).sum().item() / max(
                    moving.sum().item(), 1
                )
            row = dict(step=step, minutes=(time.time() - start) / 60, loss=loss.item(), hit=hit, hit_moving=hit_moving)
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
        if step % 100 == 0:
            save_file(md.state_dict(), f"runs/motion-lab/motion{arm}.safetensors")
    save_file(md.state_dict(), f"runs/motion-lab/motion{arm}.safetensors")


if __name__ == "__main__":
    main()
