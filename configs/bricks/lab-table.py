"""The bricks fine-tune lab's table (configs/bricks/finetune-lab.sh): per arm, its steps, chosen stay prior and
held-out rollout PSNR at it, then evaluate's action accuracy (30 s / first 4 s / first 1 s), teacher-forced PSNR,
delta-PSNR at t=16, drift-free horizon and moving things kept (the ball) on the held-out recording.
    python configs/bricks/lab-table.py LAB [LAB/...]
"""

import json
import sys
from pathlib import Path


def row(arm: Path) -> str:
    record = arm / "adapter.run" / "finetune.json"
    # an arm may be another arm's adapter with other play settings (adapter/play.json), measured again
    run = json.loads(record.read_text()) if record.is_file() else {"steps": "-"}
    choice = run.get("play_choice") or run.get("stay_prior") or {}  # (stay_prior: before decode was chosen too)
    play = arm / "adapter" / "play.json"
    if play.is_file():
        choice = {**choice, **json.loads(play.read_text())}
    m = json.loads((arm / "eval" / "results.json").read_text())["metrics"]
    acc = m["action_accuracy"]
    first = acc["generated_first"]
    bias, decode = choice.get("stay_bias"), choice.get("decode", "sprite")
    scores = choice.get("rollout_psnr", {})
    psnr = scores.get(f"{decode} {bias:g}", scores.get(f"{bias:g}")) if bias is not None else None
    return " | ".join(
        [
            arm.name,
            str(run["steps"]),
            (f"{bias:g}" + (f" ({psnr:.2f} dB)" if psnr else "") + f", {decode}") if bias is not None else "-",
            f"{100 * acc['generated']['accuracy']:.1f} / {100 * first['4s']:.1f} / {100 * first['1s']:.1f}",
            f"{m['prediction']['teacher_forced_psnr']:.2f}",
            f"{m['controllability']['t=16']['delta_psnr']:.2f}",
            f"{m['drift_free_horizon']['seconds_median']:g}",
            f"{kept:.2f}" if (kept := (m.get("moving_things") or {}).get("kept")) is not None else "-",
        ]
    )


HEADER = (
    "| arm | steps | stay prior (rollout PSNR), decode | action acc. 30 s / 4 s / 1 s (%) | TF PSNR "
    "| delta-PSNR t=16 | horizon (s) | moving kept |"
)


def main():
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    for folder in sys.argv[1:]:
        arms = [folder] if (Path(folder) / "eval").is_dir() else sorted(Path(folder).iterdir())
        for arm in map(Path, arms):
            if (arm / "eval" / "results.json").is_file():
                print("| " + row(arm) + " |")


if __name__ == "__main__":
    main()
