"""The evaluation run: every quality, control and drift measurement on held-out episodes, into one results dict.

It drives the model through core/evaluation/rollouts.py (batched like a play session), and
hands the frames to the metric modules: image_quality (PSNR/SSIM), drift (curves, Genie's
controllability, drift-free horizon), things (moving things kept), idm + effects (action accuracy),
physics (platformer rules), lpips and fvd (when their weights exist). report.py turns the dict into files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from core.actions import NUM_ACTIONS
from core.evaluation import drift
from core.evaluation.effects import label_kind, visible_actions
from core.evaluation.episodes import Episode
from core.evaluation.idm import score
from core.evaluation.image_quality import psnr, ssim
from core.evaluation.rollouts import reconstruct, rollout, teacher_forced
from core.evaluation.things import KeptTally
from core.tokenizer import codebook_usage
from core.train.dynamics import action_loss_gap

ACCURACY_SECONDS = (1, 4)  # action accuracy is also reported over each rollout's first 1 s and 4 s


@dataclass
class EvalConfig:
    recon_frames: int = 64  # frames per episode for reconstruction and teacher forcing
    keep_frames: int = 300  # generated frames kept per episode for physics, FVD and the GIF (10 s)
    temperature: float = 0.0  # rollout sampling: 0 = likeliest token, as a play session by default
    seed: int = 0  # sampling and the random actions of the controllability test
    ssim_every: int = 1  # SSIM on every n-th rollout step (SSIM costs more than the model step on CPU)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.mean(values)), 4) if values else None


def evaluate_model(
    model,
    episodes: list[Episode],
    config: EvalConfig | None = None,
    *,
    idm=None,
    idm_info=None,
    lpips=None,
    lpips_note: str = "",
    i3d=None,
    fvd_note: str = "",
    progress: bool = True,
) -> dict:
    """Run every measurement; returns {"metrics": ..., "curves": ..., "samples": ...} (samples: frames for the GIF)."""
    config = config or EvalConfig()
    torch.manual_seed(config.seed)
    metrics: dict = {}
    metrics["reconstruction"], metrics["prediction"] = _reconstruction(
        model, episodes, config, lpips, lpips_note, progress
    )
    starts = [drift.references(e.frames[0]) for e in episodes]  # what the drift signals compare frames against
    rollouts = _free_rollouts(model, episodes, config, idm, starts, progress)
    steps = len(rollouts["counts"])
    curves = {"psnr": rollouts["psnr"], "ssim": rollouts["ssim"], **rollouts["fidelity"]}
    metrics["drift"] = drift.summarise_curve({"psnr": curves["psnr"], "ssim": curves["ssim"]}, rollouts["counts"])
    metrics["drift"]["rollout_frames"] = steps
    metrics["controllability"] = _controllability(model, episodes, config, rollouts["control"], progress)

    per_episode = rollouts["fidelity_per_episode"]
    real = [
        drift.fidelities(e.frames[1 : len(per_episode["palette_fidelity"][i]) + 1], start)
        for i, (e, start) in enumerate(zip(episodes, starts))
    ]
    floors = [{name: drift.band_floors(r[name]) for name in drift.SIGNALS} for r in real]  # per episode, per time
    horizons = [
        drift.drift_free_frames(
            np.any([np.asarray(per_episode[name][i]) < floors[i][name] for name in drift.SIGNALS], 0)
        )
        for i in range(len(episodes))
    ]
    real = {name: np.concatenate([r[name] for r in real]) for name in drift.SIGNALS}
    for name in drift.SIGNALS:  # the band's floor over time, averaged over the episodes that reach each time
        curves[f"{name}_floor"] = np.array(
            [np.mean([f[name][t] for f in floors if len(f[name]) > t]) for t in range(steps)]
        )
    seconds = [frames / drift.FPS for frames, _ in horizons]
    metrics["drift_free_horizon"] = {
        "seconds_median": round(float(np.median(seconds)), 2),
        "seconds_per_episode": [round(s, 2) for s in seconds],
        "drifted": [bool(d) for _, d in horizons],
        "signal": "palette fidelity and patch fidelity (see core/evaluation/drift.py)",
        "band": "each frame against the lowest real frame of its episode within 1 s of it",
        "real_fidelity_min": round(float(real["palette_fidelity"].min()), 4),
        "real_patch_fidelity_min": round(float(real["patch_fidelity"].min()), 4),
        "censored": "a rollout that never drifted counts its full length (a lower bound)",
    }

    metrics["moving_things"] = rollouts["things"].summary([e.name for e in episodes], drift.FPS, ACCURACY_SECONDS)
    metrics["action_accuracy"] = _action_accuracy(episodes, rollouts, idm, idm_info)
    metrics["physics"] = _physics(episodes, rollouts["kept"])
    metrics["fvd"] = _fvd(episodes, rollouts["kept"], i3d, fvd_note)
    return {
        "metrics": metrics,
        "config": asdict(config),
        "curves": {k: [round(float(x), 4) for x in v] for k, v in curves.items()},
        "samples": {"real": episodes[0].frames[1 : rollouts["kept"][0].shape[0] + 1], "generated": rollouts["kept"][0]},
    }


def _reconstruction(model, episodes, config, lpips, lpips_note, progress) -> tuple[dict, dict]:
    rows = {
        k: []
        for k in (
            "tok_psnr",
            "tok_ssim",
            "dec_psnr",
            "dec_ssim",
            "tf_psnr",
            "tf_ssim",
            "copy_psnr",
            "dec_lpips",
            "tf_lpips",
        )
    }
    ids = []
    for episode in tqdm(episodes, desc="reconstruction", unit="episode", disable=not progress):
        frames = episode.frames[: config.recon_frames]
        round_trip, decoded, episode_ids = reconstruct(model, frames)
        predicted = teacher_forced(model, frames, episode.actions[: len(frames)], episode_ids)
        ids.append(episode_ids)
        rows["tok_psnr"] += list(psnr(frames, round_trip))
        rows["tok_ssim"] += list(ssim(frames, round_trip))
        rows["dec_psnr"] += list(psnr(frames[1:], decoded))
        rows["dec_ssim"] += list(ssim(frames[1:], decoded))
        rows["tf_psnr"] += list(psnr(frames[1:], predicted))
        rows["tf_ssim"] += list(ssim(frames[1:], predicted))
        # the "nothing moves" baseline: a model that repeats the last frame scores this much
        rows["copy_psnr"] += list(psnr(frames[1:], frames[:-1]))
        if lpips is not None:
            rows["dec_lpips"] += list(lpips.distance(frames[1:], decoded))
            rows["tf_lpips"] += list(lpips.distance(frames[1:], predicted))
    gap = _action_loss_gap(model, episodes, ids)
    lpips_value = (lambda key: _mean(rows[key])) if lpips is not None else (lambda key: lpips_note)
    recon = {
        **_encoding(model, ids, _mean(rows["tok_psnr"]), _mean(rows["tok_ssim"])),
        "decoder_psnr": _mean(rows["dec_psnr"]),
        "decoder_ssim": _mean(rows["dec_ssim"]),
        "decoder_lpips": lpips_value("dec_lpips"),
        "frames": len(rows["tok_psnr"]),
    }
    prediction = {
        "teacher_forced_psnr": _mean(rows["tf_psnr"]),
        "teacher_forced_ssim": _mean(rows["tf_ssim"]),
        "teacher_forced_lpips": lpips_value("tf_lpips"),
        "copy_previous_psnr": _mean(rows["copy_psnr"]),
        "frames": len(rows["tf_psnr"]),
        **gap,
    }
    return recon, prediction


def _encoding(model, ids: list[torch.Tensor], round_trip_psnr, round_trip_ssim) -> dict:
    """What the encoding keeps of a frame. A tokens-family model: its tokenizer's round trip and codebook use.
    A frames-family model has no learnt tokenizer and no codebook (the dynamics reads the frame area-pooled);
    its round trip is the small frame scaled back up, reported under its own name, never as a tokenizer's."""
    if model.config.family == "tokens":
        usage = codebook_usage(torch.cat(ids), model.config.tokenizer.vocab_size)
        return {
            "tokenizer_psnr": round_trip_psnr,
            "tokenizer_ssim": round_trip_ssim,
            "codebook_used_fraction": round(usage["used_fraction"], 4),
            "codebook_perplexity": round(usage["perplexity"], 2),
        }
    r = model.config.tokenizer.resolution
    none = f"not applicable (frames family: no learnt tokenizer, the dynamics reads frames area-pooled to {r}x{r})"
    return {
        "tokenizer_psnr": none,
        "tokenizer_ssim": none,
        "codebook_used_fraction": "not applicable (frames family: no codebook)",
        "codebook_perplexity": "not applicable (frames family: no codebook)",
        "small_frame_psnr": round_trip_psnr,  # the pooled frame scaled back up (bilinear): what the pool keeps
        "small_frame_ssim": round_trip_ssim,
        "small_frame_resolution": r,
    }


def _action_loss_gap(model, episodes, ids: list[torch.Tensor], window: int = 32) -> dict:
    """The dynamics' teacher-forced loss under each episode's own actions and under another episode's:
    a gap near zero means the model ignores its actions."""
    length = min(window, *(len(i) for i in ids))
    tokens = torch.stack([i[:length] for i in ids])  # (E, T, S) or (E, T, 3, r, r)
    actions = torch.stack([torch.as_tensor(e.actions[:length], dtype=torch.long) for e in episodes])
    true, shuffled = action_loss_gap(model.dynamics, tokens, actions)
    return {
        "action_loss_true": round(true, 4),
        "action_loss_shuffled": round(shuffled, 4),
        "action_loss_gap": round(shuffled - true, 4),
    }


def _free_rollouts(model, episodes, config, idm, starts, progress) -> dict:
    """Roll every episode out under its real actions, scoring each step as it comes (the drift signals against
    `starts`, each episode's drift.references)."""
    lengths = np.array([len(e.frames) - 1 for e in episodes])  # steps with a real frame to compare
    steps = int(lengths.max())
    actions = np.zeros((len(episodes), steps), np.int64)  # NOOP past an episode's end
    for i, e in enumerate(episodes):
        actions[i, : lengths[i]] = e.actions[: lengths[i]]
    sums = {k: np.zeros(steps) for k in ("psnr", "ssim", "ssim_count")}
    counts = np.zeros(steps, np.int64)
    fidelity = {name: [[] for _ in episodes] for name in drift.SIGNALS}
    kept = [[] for _ in episodes]
    control = {s: [] for s in drift.CONTROL_STEPS}
    predicted = [[] for _ in episodes]
    things = KeptTally(len(episodes))
    previous = np.stack([e.frames[0] for e in episodes])
    stream = rollout(
        model, previous, actions, temperature=config.temperature, seed=config.seed, warmup=_warmup(episodes)
    )
    for t, generated in enumerate(tqdm(stream, total=steps, desc="rollout", unit="frame", disable=not progress)):
        live = np.flatnonzero(lengths > t)
        real = np.stack([episodes[i].frames[t + 1] for i in live])
        values = psnr(real, generated[live])
        sums["psnr"][t], counts[t] = values.sum(), len(live)
        if t % config.ssim_every == 0 or t + 1 in drift.CONTROL_STEPS:
            sums["ssim"][t], sums["ssim_count"][t] = ssim(real, generated[live]).sum(), len(live)
        for k, i in enumerate(live):
            for name, value in drift.fidelities(generated[i : i + 1], starts[i]).items():
                fidelity[name][i].append(value[0])
            if t < config.keep_frames:
                kept[i].append(generated[i])
            if t + 1 in control:
                control[t + 1].append(values[k])
            things.add(i, episodes[i].frames[t], episodes[i].frames[t + 1], previous[i], generated[i])
        if idm is not None:
            step_predictions = idm.predict(previous[live], generated[live])[0]
            for k, i in enumerate(live):
                predicted[i].append(step_predictions[k])
        previous = generated
    with np.errstate(invalid="ignore"):
        curve_ssim = np.where(sums["ssim_count"] > 0, sums["ssim"] / np.maximum(sums["ssim_count"], 1), np.nan)
    mean_fidelity = {
        name: np.array([np.mean([f[t] for f in per_episode if len(f) > t]) for t in range(steps)])
        for name, per_episode in fidelity.items()
    }
    return {
        "psnr": sums["psnr"] / counts,
        "ssim": _fill(curve_ssim),
        "fidelity": mean_fidelity,
        "counts": counts,
        "fidelity_per_episode": {name: [np.array(f) for f in lists] for name, lists in fidelity.items()},
        "kept": [np.stack(k) for k in kept],
        "control": control,
        "idm_predicted": [np.array(p, np.int64) for p in predicted],
        "things": things,
    }


def _warmup(episodes) -> tuple[np.ndarray, np.ndarray] | None:
    """The real play before each episode's first frame (windows cut from a recording), as rollout's `warmup`;
    None where no episode has any. Shorter ones are padded in front with their earliest frame under no key (for
    a frames-family model, the same context as no warm-up at all)."""
    count = max(len(e.before_frames) if e.before_frames is not None else 0 for e in episodes)
    if not count:
        return None
    frames, keys = [], []
    for e in episodes:
        before = e.before_frames if e.before_frames is not None else e.frames[:0]
        before_keys = e.before_actions if e.before_actions is not None else e.actions[:0]
        pad = count - len(before)
        earliest = before[:1] if len(before) else e.frames[:1]
        frames.append(np.concatenate([np.repeat(earliest, pad, 0), before]))
        keys.append(np.concatenate([np.full(pad, NUM_ACTIONS, np.int64), before_keys]))
    return np.stack(frames), np.stack(keys)


def _fill(curve: np.ndarray) -> np.ndarray:
    """Carry the last computed value over steps where SSIM was skipped (ssim_every > 1)."""
    out = curve.copy()
    for t in range(1, len(out)):
        if np.isnan(out[t]):
            out[t] = out[t - 1]
    return out


def _controllability(model, episodes, config, real_psnr, progress) -> dict:
    """Genie's delta-PSNR: the same starts, rolled out under uniformly random actions."""
    horizon = min(max(drift.CONTROL_STEPS), max(len(e.frames) - 1 for e in episodes))
    rng = np.random.default_rng(config.seed)
    actions = rng.integers(0, model.config.dynamics.num_actions, (len(episodes), horizon))
    random_psnr = {s: [] for s in drift.CONTROL_STEPS}
    stream = rollout(
        model,
        np.stack([e.frames[0] for e in episodes]),
        actions,
        temperature=config.temperature,
        seed=config.seed,
        warmup=_warmup(episodes),
    )
    for t, generated in enumerate(
        tqdm(stream, total=horizon, desc="random actions", unit="frame", disable=not progress)
    ):
        if t + 1 in random_psnr:
            live = [i for i, e in enumerate(episodes) if len(e.frames) - 1 > t]
            random_psnr[t + 1] = list(psnr(np.stack([episodes[i].frames[t + 1] for i in live]), generated[live]))
    return drift.controllability(real_psnr, random_psnr)


def _action_accuracy(episodes, rollouts, idm, idm_info) -> dict | str:
    if idm is None:
        return (
            "not computed (no IDM given: train one with `pocketworld idm train --data SHARDS --out DIR`, "
            "pass --idm DIR)"
        )
    game = episodes[0].meta["game"]
    if idm.config.game != game:
        return f"not computed (the IDM was trained on {idm.config.game}, the data is {game})"
    labels, commanded, real_predicted = [], [], []
    for episode in episodes:
        n = len(episode.frames) - 1
        commanded.append(episode.actions[:n])
        labels.append(visible_actions(game, episode.actions[:n], episode.state, episode.meta.get("state_layout", {})))
        real_predicted.append(idm.predict(episode.frames[:-1], episode.frames[1:])[0])
    # the rollouts' first seconds apart: whether the dream follows the keys at all, before drift takes over
    hits = list(zip(rollouts["idm_predicted"], labels))
    early = {
        f"{s}s": round(float(np.concatenate([(p == y)[: s * drift.FPS] for p, y in hits]).mean()), 4)
        for s in ACCURACY_SECONDS
    }
    # windows of one recording differ by tens of points (a paddle lost in one, followed in the next): a mean of
    # four hides which failed
    episode_scores = [
        {"episode": e.name, "accuracy": round(float((p == y).mean()), 4), "count": len(y)}
        for e, (p, y) in zip(episodes, hits)
    ]
    labels, commanded = np.concatenate(labels), np.concatenate(commanded)
    real = score(np.concatenate(real_predicted), labels, commanded)
    generated = score(np.concatenate(rollouts["idm_predicted"]), labels, commanded)
    rule = label_kind(game, episodes[0].meta.get("state_layout", {}))
    return {
        "generated": generated.to_dict(),
        "generated_first": early,
        "generated_per_episode": episode_scores,
        "real_this_split": real.to_dict(),
        "idm_heldout_at_training": (idm_info or {}).get("heldout", {}).get("accuracy"),
        "labels": rule,
    }


def _physics(episodes, kept) -> dict | str:
    from core.evaluation.physics import physics_score, pooled

    platformer = [(e, k) for e, k in zip(episodes, kept) if e.meta["game"] == "platformer"]
    if not platformer:
        return "not computed (physics rules exist for the platformer only)"
    real, generated = [], []
    for episode, frames in platformer:
        seed, tileset = episode.meta["seed"], episode.meta.get("tileset")
        real.append(physics_score(episode.frames[: len(frames) + 1], seed, tileset))
        generated.append(physics_score(np.concatenate([episode.frames[:1], frames]), seed, tileset))
    return {"generated": pooled(generated), "real": pooled(real)}


def _fvd(episodes, kept, i3d, note) -> dict | str:
    if i3d is None:
        return note
    from core.evaluation.fvd import CLIP_LEN, clips_of, frechet_distance

    real = clips_of([e.frames[1 : len(k) + 1] for e, k in zip(episodes, kept)])
    generated = clips_of(kept)
    if len(real) < 2:
        return f"not computed (needs at least 2 clips of {CLIP_LEN} frames; got {len(real)})"
    value = frechet_distance(i3d.embed(real), i3d.embed(generated))
    return {
        "fvd": round(value, 2),
        "clip_frames": CLIP_LEN,
        "clips": len(real),
        "note": "few clips bias FVD upwards; compare numbers made with the same clip count",
    }
