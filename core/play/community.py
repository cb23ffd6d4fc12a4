"""The Community tab's actions: browse the fine-tunes others shared in a registry
(finetune/registry.py), filter them by game and base model, read one's card and preview, and hand
it to the Play tab. Plain functions of a registry, so they are tested without a browser.

A registry that cannot be reached (no network, a bad token) comes back as a message for the
page, never as an exception.
"""

from __future__ import annotations

from pathlib import Path

from core.play.models import REGISTRY_PREFIX

ANY = "any"  # the filter value that keeps every game / base model
HEADERS = ["repo", "game", "base model"]
PREVIEW_SUFFIXES = (".gif", ".png")


def browse(
    registry, game: str = ANY, base: str = ANY, search: str = ""
) -> tuple[list[list[str]], list[str], list[str], str]:
    """(table rows, game choices, base-model choices, a note) for the shared fine-tunes that match."""
    from finetune.registry import RegistryError

    if registry is None:
        return [], [ANY], [ANY], "This app has no registry to browse."
    try:
        entries = registry.list(search=search.strip() or None)
    except RegistryError as err:
        return [], [ANY], [ANY], f"Cannot list the registry: {err}"
    games = [ANY] + sorted({e.game for e in entries if e.game})
    bases = [ANY] + sorted({e.base_model for e in entries if e.base_model})
    shown = [e for e in entries if game in (ANY, e.game) and base in (ANY, e.base_model)]
    rows = [[e.repo, e.game or "?", e.base_model or "?"] for e in shown]
    note = (
        f"{len(shown)} of {len(entries)} shared fine-tune(s)"
        if entries
        else "No fine-tunes shared yet: make one in the Fine-tune tab and push it."
    )
    return rows, games, bases, note


def show(registry, repo: str) -> tuple[str, str | None, str | None]:
    """(the card's text as Markdown, a preview image path or None, the Play tab's model value or None)."""
    from huggingface_hub import ModelCard

    from finetune.registry import RegistryError

    if registry is None or not repo:
        return "Pick a fine-tune in the table.", None, None
    try:
        folder = Path(registry.pull(repo))  # checked: adapter files and card are valid before we show them
    except (RegistryError, ValueError, OSError) as err:
        return f"Cannot open {repo}: {err}", None, None
    card = ModelCard((folder / "README.md").read_text(encoding="utf-8"))
    previews = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in PREVIEW_SUFFIXES),
        key=lambda p: (p.suffix.lower() != ".gif", p.name),
    )  # a gameplay GIF before a loss curve
    return card.text, str(previews[0]) if previews else None, REGISTRY_PREFIX + repo
