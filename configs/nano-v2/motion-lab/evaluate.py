"""Score a motion-lab model the way `bench keys` scores a model (RIGHT, then LEFT, held 12 frames from 3 held-out
levels a game), beside the shipped nano; whole-frame PSNR against the real game at t = 1, 4, 12; strips (rows per
key: real, nano, motion, motion with moves smoothed over neighbouring blocks).
    ARM=A python configs/nano-v2/motion-lab/evaluate.py runs/motion-lab/motionA.safetensors TAG
"""

import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, "configs/nano-v2/motion-lab")
import lab

from core.actions import ACTION_IDS, NUM_ACTIONS
from core.control.keys import KeysConfig, masked_psnr
from core.frames import to_model, to_uint8
from core.games import make_game
from core.session import WorldSession
from core.world_model import WorldModel

BASE = lab.BASE


def psnr(a, b):
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return 10 * np.log10(255**2 / max(mse, 1e-10))


@torch.no_grad()
def motion_rollout(md, nano, first, key, steps, smooth, seed):
    """smooth: each block takes the move most likely over its 3x3 neighbourhood of blocks (summed log-probabilities),
    so that the blocks of one sprite agree (uniform background blocks accept any move, so lose nothing)."""
    pool, c = nano.tokenizer, nano.dynamics.config.context
    gen = torch.Generator().manual_seed(seed)
    full = to_model(first[None])
    small = pool.encode(full)
    context = small[:, None].expand(-1, c, -1, -1, -1)
    recent = torch.full((1, nano.dynamics.config.action_context), NUM_ACTIONS, dtype=torch.long)
    out, redrawn = [first], []
    for _ in range(steps):
        recent = torch.cat([torch.tensor([[ACTION_IDS[key]]]), recent[:, :-1]], 1)
        dreamed_small = nano.dynamics.predict(context, recent, gen).clamp(-1, 1) if md.dreamed_input else None
        logits = md(context, recent, dreamed_small)
        if smooth:
            logits = torch.nn.functional.avg_pool2d(logits.log_softmax(1), 3, stride=1, padding=1)
        moves = logits.argmax(1)
        redraw = moves == lab.NM
        new = lab.warp(full, moves.clamp(max=lab.NM - 1))
        if redraw.any():
            predicted = nano.dynamics.predict(context, recent, gen).clamp(-1, 1)
            drawn = nano.decoder(predicted, full).clamp(-1, 1)
            up = redraw.repeat_interleave(lab.BLOCK, 1).repeat_interleave(lab.BLOCK, 2)[:, None]
            new = torch.where(up, drawn, new)
        redrawn.append(redraw.float().mean().item())
        full = new
        context = torch.cat([context[:, 1:], pool.encode(full)[:, None]], 1)
        out.append(to_uint8(full)[0])
    return np.stack(out), float(np.mean(redrawn))


def main():
    torch.set_num_threads(2)
    weights = sys.argv[1] if len(sys.argv) > 1 else "runs/motion-lab/motionA.safetensors"
    tag = sys.argv[2] if len(sys.argv) > 2 else "lab"
    nano = WorldModel.from_pretrained(BASE).eval()
    trained = WorldModel.from_pretrained(BASE).eval()
    arm = os.environ.get("ARM", "A")
    md = lab.MotionDynamics(trained.dynamics, dreamed_input=arm in "BC", blind=arm == "C").eval()
    md.load_state_dict(load_file(weights))
    cfg = KeysConfig()
    results = {}
    for game in cfg.games:
        for seed in cfg.seeds:
            runs = {}
            for key in cfg.keys:
                env = make_game(game, num_envs=1)
                real = [env.reset([seed])[0]]
                for _ in range(cfg.steps):
                    real.append(env.step(np.array([ACTION_IDS[key]]))[0][0])
                real = np.stack(real)
                session = WorldSession(nano)
                dream = [session.reset(seed=seed, game=game)] + [session.step(key) for _ in range(cfg.steps)]
                mot, share = motion_rollout(md, nano, real[0], key, cfg.steps, False, seed)
                smooth, _ = motion_rollout(md, nano, real[0], key, cfg.steps, True, seed)
                runs[key] = dict(real=real, nano=np.stack(dream), motion=mot, smooth=smooth, redraw=share)
            first, second = cfg.keys
            mask = (
                np.abs(runs[first]["real"][-1].astype(int) - runs[second]["real"][-1].astype(int)).max(-1) > cfg.differ
            )
            for arm in ("nano", "motion", "smooth"):
                pair = [
                    masked_psnr(runs[k][arm][-1], runs[k]["real"][-1], mask)
                    - masked_psnr(runs[k][arm][-1], runs[o]["real"][-1], mask)
                    for k, o in ((first, second), (second, first))
                ]
                r = results.setdefault(
                    f"{game}/{arm}", dict(margins=[], follows=0, psnr1=[], psnr4=[], psnr12=[], redraw=[])
                )
                r["margins"] += pair
                r["follows"] += min(pair) > 0
                for k in cfg.keys:
                    for t in (1, 4, 12):
                        r[f"psnr{t}"].append(psnr(runs[k][arm][t], runs[k]["real"][t]))
                    r["redraw"].append(runs[k]["redraw"])
            picks = list(range(0, cfg.steps + 1, cfg.strip_every))
            rows = [
                np.concatenate(list(runs[k][arm][picks]), 1)
                for k in cfg.keys
                for arm in ("real", "nano", "motion", "smooth")
            ]
            Image.fromarray(np.concatenate(rows, 0)).save(f"runs/motion-lab/{tag}-{game}-{seed}.png")
    table = {}
    print("| arm | margin dB | follows | PSNR t1 | t4 | t12 | redraw share |")
    for name, r in results.items():
        row = dict(
            margin=float(np.mean(r["margins"])),
            follows=r["follows"],
            **{f"psnr{t}": float(np.mean(r[f"psnr{t}"])) for t in (1, 4, 12)},
            redraw=float(np.mean(r["redraw"])),
        )
        table[name] = row
        psnrs = " | ".join(f"{row[f'psnr{t}']:.2f}" for t in (1, 4, 12))
        print(f"| {name} | {row['margin']:+.2f} | {row['follows']}/3 | {psnrs} | {row['redraw']:.3f} |")
    json.dump(table, open(f"runs/motion-lab/{tag}-keys.json", "w"), indent=1)


if __name__ == "__main__":
    main()
