"""Model cards for zoo variants and fine-tunes, from the Jinja templates in model_cards/ (core/paths.py).

Cards follow the Hugging Face Hub's model card spec: YAML metadata (library_name "pocketworld",
which is how `pocketworld hub list` finds community fine-tunes; tags; base_model with
base_model_relation "adapter" for a fine-tune, which links it under its base on the Hub;
pipeline_tag; license) above a Markdown body filled with measured numbers only. Rendering goes
through huggingface_hub's `ModelCard.from_template`, and `check_card` re-parses the text with
`ModelCard` and checks the metadata we rely on, so a card that the Hub or our registry would
misread is caught before it is pushed.

pipeline_tag is "image-to-video": the Hub has no world-model task, and a session turns a first
frame (plus actions) into video.
"""

from __future__ import annotations

import math
import re
from numbers import Real

from huggingface_hub import ModelCard, ModelCardData

from core.config import HUB_ORGANISATION, ZOO
from core.paths import TEMPLATES_VARIABLE, card_templates_dir

LIBRARY = "pocketworld"
PIPELINE_TAG = "image-to-video"
LICENSE = "mit"


class CardError(ValueError):
    """A model card (or the numbers for one) that the Hub or our registry would misread."""


def game_tag(game: str) -> str:
    """The tag a fine-tune carries for its game ("game-my-platformer"), so the Hub can filter by it."""
    return "game-" + (re.sub(r"[^a-z0-9]+", "-", game.lower()).strip("-") or "unnamed")


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def markdown_text(text: str) -> str:
    """User text (a game's name, a repo's) as literal Markdown on one line: every character Markdown or HTML
    would read as syntax is escaped, so a name cannot break the card's tables, add links or inject HTML."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _template(name: str) -> str:
    path = card_templates_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {path} not found: point {TEMPLATES_VARIABLE} at a folder holding {name} "
            "(the repository's model_cards/)"
        )
    return str(path)


def _number(name: str, value) -> float | int:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise CardError(f"metric {name!r} must be a finite number, got {value!r}")
    return round(float(value), 4) if isinstance(value, float) else int(value)


# one line per model family (config.json's `family`): what the card says the model is made of
ARCHITECTURES = {
    "tokens": "Tokenizer (FSQ VQ-VAE, 16x16 tokens) -> Mamba dynamics with action cross-attention -> U-Net\n"
    "frame decoder.",
    "frames": "Frames area-pooled to small frames -> a U-Net dynamics that denoises the next small frame in a few\n"
    "steps, the keys FiLM'd into every block (DIAMOND) -> a U-Net upsampler that draws the full-size frame\n"
    "from it and the previous frame. With a motion net (config.json's dynamics.motion), play moves the previous\n"
    "frame's pixels square by square instead, and redraws that way only the squares no move makes.",
}


def zoo_card(
    variant: str,
    repo_id: str,
    parameters: dict[str, int],
    metrics: dict | None = None,
    measured_on: str | None = None,
    fps: int = 30,
    family: str | None = None,
) -> str:
    """The card of a zoo variant; `metrics` maps a metric name to its measured value; `family` (default: the
    zoo config's) picks the architecture line."""
    from core.config import ZOO

    family = family or (ZOO[variant].family if variant in ZOO else "tokens")
    if family not in ARCHITECTURES:
        raise CardError(f"unknown model family {family!r}; expected one of {sorted(ARCHITECTURES)}")
    metrics = {name: _number(name, value) for name, value in (metrics or {}).items()}
    data = ModelCardData(
        library_name=LIBRARY,
        license=LICENSE,
        pipeline_tag=PIPELINE_TAG,
        tags=[LIBRARY, "world-model", "game", f"pocketworld-{variant}"],
    )
    card = ModelCard.from_template(
        data,
        template_path=_template("zoo.md"),
        variant=variant,
        repo_id=repo_id,
        parameters=parameters,
        metrics=metrics,
        measured_on=measured_on,
        fps=fps,
        license=LICENSE,
        architecture=ARCHITECTURES[family],
    )
    return check_card(str(card), finetune=False).content


def finetune_card(
    repo_id: str,
    base_model: str,
    game: str,
    rank: int,
    alpha: float,
    targets: list[str],
    steps: int | None = None,
    data_frames: int | None = None,
    metrics: dict | None = None,
    preview: str | None = None,
    play: dict | None = None,
) -> str:
    """The card of a LoRA fine-tune; `metrics` maps a metric name to (base value, fine-tuned value); `play` is how
    the play settings its play.json sets were chosen (finetune/play_settings.py's choose_play_settings). A zoo
    variant's name as base_model ("nano") is written as its Hub id ("pocketworld/nano"), which links to it and
    which WorldModel.from_pretrained reads from the installed zoo."""
    if base_model in ZOO:
        base_model = f"{HUB_ORGANISATION}/{base_model}"
    pairs = {}
    for name, pair in (metrics or {}).items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise CardError(f"metric {name!r} must be a (base, fine-tuned) pair, got {pair!r}")
        pairs[name] = (_number(name, pair[0]), _number(name, pair[1]))
    if play is not None:
        play = _checked_play(play)
    data = ModelCardData(
        library_name=LIBRARY,
        license=LICENSE,
        pipeline_tag=PIPELINE_TAG,
        base_model=base_model,
        base_model_relation="adapter",
        tags=[LIBRARY, "world-model", "game", "lora", game_tag(game)],
        # all the card says, so that a push can write it again under the repo it goes to (rerender_card)
        pocketworld={
            "game": game,
            "rank": rank,
            "alpha": alpha,
            "targets": list(targets),
            "steps": steps,
            "data_frames": data_frames,
            "metrics": {name: list(pair) for name, pair in pairs.items()},
            "preview": preview,
        }
        | ({"play": play} if play else {}),
    )
    base_url = base_model if "://" in base_model else f"https://huggingface.co/{base_model}"
    card = ModelCard.from_template(
        data,
        template_path=_template("finetune.md"),
        title=markdown_text(f"{repo_id.split('/')[-1]}: PocketWorld on {game}"),
        repo_id=repo_id,
        base_model=base_model,
        base_model_text=markdown_text(base_model),
        base_url=base_url,
        game=markdown_text(game),
        rank=rank,
        alpha=alpha,
        targets=targets,
        steps=steps,
        data_frames=data_frames,
        data_seconds=round(data_frames / 30, 1) if data_frames is not None else None,
        metrics=pairs,
        preview=preview,
        play=play,
        license=LICENSE,
    )
    return check_card(str(card), finetune=True).content


def rerender_card(text: str, repo_id: str) -> str:
    """A fine-tune's card written again for the repo it is pushed as (`pocketworld finetune` names the adapter's
    folder, which is not where others pull it from). A card without what that needs (a hand-written one, or
    one from before cards kept it) comes back unchanged."""
    card = check_card(text, finetune=True)
    kept = card.data.get("pocketworld")
    needed = ("game", "rank", "alpha", "targets", "metrics")
    if not all(key in kept for key in needed):
        return text
    return finetune_card(
        repo_id,
        card.data.base_model,
        kept["game"],
        kept["rank"],
        kept["alpha"],
        kept["targets"],
        steps=kept.get("steps"),
        data_frames=kept.get("data_frames"),
        metrics={name: tuple(pair) for name, pair in kept["metrics"].items()},
        preview=kept.get("preview"),
        play=kept.get("play"),
    )


def _checked_play(play) -> dict:
    """A card's `play` (finetune/play_settings.py's choice) if its fields are there and of their kinds."""
    fields = ("decode", "stay_bias", "frames", "clips", "rollout_psnr")
    if not isinstance(play, dict) or set(play) != set(fields) or not isinstance(play["rollout_psnr"], dict):
        raise CardError(f"play must hold {', '.join(fields)} (label -> dB), got {play!r}")
    if not isinstance(play["decode"], str):
        raise CardError(f"play.decode must be a word, got {play['decode']!r}")
    return {
        "decode": play["decode"],
        **{name: _number(f"play.{name}", play[name]) for name in ("stay_bias", "frames", "clips")},
        "rollout_psnr": {str(k): _number(f"rollout PSNR of {k}", v) for k, v in play["rollout_psnr"].items()},
    }


def check_card(text: str, finetune: bool) -> ModelCard:
    """Parse `text` with huggingface_hub's ModelCard and check the metadata PocketWorld relies on."""
    import yaml

    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except (ValueError, yaml.YAMLError) as err:
        raise CardError(f"not a valid model card: {err}") from None
    data = card.data
    problems = []
    if data.library_name != LIBRARY:
        problems.append(f"library_name is {data.library_name!r}, not {LIBRARY!r} (the registry lists cards by it)")
    if LIBRARY not in (data.tags or []):
        problems.append(f"tags lack {LIBRARY!r}")
    if data.pipeline_tag != PIPELINE_TAG:
        problems.append(f"pipeline_tag is {data.pipeline_tag!r}, not {PIPELINE_TAG!r}")
    if not data.license:
        problems.append("no license")
    if finetune:
        if not isinstance(data.base_model, str) or not data.base_model:
            problems.append("a fine-tune needs base_model (the model its adapter loads onto)")
        if data.get("base_model_relation") != "adapter":
            problems.append("a fine-tune's base_model_relation must be 'adapter'")
        if not isinstance(data.get("pocketworld"), dict) or not data.get("pocketworld", {}).get("game"):
            problems.append("a fine-tune needs pocketworld.game (the game it learned)")
    if problems:
        raise CardError("model card: " + "; ".join(problems))
    return card
