"""Model cards: rendered from model_cards/ templates with measured numbers, parsed back by
huggingface_hub's ModelCard with the Hub metadata the registry relies on."""

import math

import pytest
from huggingface_hub import ModelCard

from finetune.cards import CardError, check_card, finetune_card, game_tag, rerender_card, zoo_card


def test_zoo_card_carries_hub_metadata_and_the_measured_numbers():
    text = zoo_card(
        "nano",
        "pocketworld/pocketworld-nano",
        {"total": 12_345_678, "dynamics": 9_000_000},
        {"tokenizer_psnr_db": 31.23456, "play_fps_cpu": 41},
        measured_on="2 CPU cores",
    )
    card = ModelCard(text)
    assert card.data.library_name == "pocketworld" and card.data.pipeline_tag == "image-to-video"
    assert card.data.license == "mit" and {"pocketworld", "pocketworld-nano"} <= set(card.data.tags)
    assert "| tokenizer_psnr_db | 31.2346 |" in text and "| total | 12,345,678 |" in text
    assert "on 2 CPU cores" in text


def test_zoo_card_without_numbers_says_so():
    text = zoo_card("tiny", "pocketworld/pocketworld-tiny", {"total": 1})
    assert "Not measured yet" in text and "| metric |" not in text


def test_finetune_card():
    text = finetune_card(
        "alice/jumpy",
        "pocketworld/pocketworld-nano",
        "Jumpy Jim!",
        rank=8,
        alpha=16.0,
        targets=["to_q", "in_proj"],
        steps=600,
        data_frames=18_000,
        metrics={"next_frame_psnr_db": (21.5, 24.25), "action_accuracy": (0.41, 0.63)},
        preview="preview.gif",
    )
    card = check_card(text, finetune=True)
    assert card.data.base_model == "pocketworld/pocketworld-nano" and card.data.base_model_relation == "adapter"
    assert card.data.pocketworld == {
        "game": "Jumpy Jim!",
        "rank": 8,
        "alpha": 16.0,
        "targets": ["to_q", "in_proj"],
        "steps": 600,
        "data_frames": 18_000,
        "metrics": {"next_frame_psnr_db": [21.5, 24.25], "action_accuracy": [0.41, 0.63]},
        "preview": "preview.gif",
    }  # all a push needs to write the card again under its repo
    assert game_tag("Jumpy Jim!") == "game-jumpy-jim" and "game-jumpy-jim" in card.data.tags
    assert "| next_frame_psnr_db | 21.5 | 24.25 |" in text and "18000 frames (600.0 s at 30 FPS)" in text
    assert "![preview](preview.gif)" in text
    # a zoo variant's name is written as its Hub id: the link goes to the model, not to huggingface.co/nano
    nano = finetune_card("alice/jumpy", "nano", "Jumpy", rank=8, alpha=16.0, targets=["to_q"])
    assert check_card(nano, finetune=True).data.base_model == "pocketworld/nano"
    assert "(https://huggingface.co/pocketworld/nano)" in nano and "huggingface.co/nano" not in nano


def test_a_finetune_card_shows_how_its_play_settings_were_chosen_and_a_push_keeps_them():
    play = {
        "decode": "outcome",
        "stay_bias": 2.0,
        "frames": 16,
        "clips": 14,
        "rollout_psnr": {"sprite 0": 29.81, "sprite 10": 31.08, "outcome 2": 31.344},
    }
    text = finetune_card("local/adapter", "nano", "bricks", 8, 16.0, ["conv1"], metrics={}, play=play)
    assert "by **outcome** with **2.0 nats**" in text and "for 16 frames from 14 held-out clips" in text
    assert "| sprite 10 | 31.08 |" in text and "| outcome 2 | 31.34 |" in text
    again = rerender_card(text, "alice/bricks")
    assert check_card(again, finetune=True).data.pocketworld["play"] == play and "by **outcome**" in again
    assert "Play decodes" not in finetune_card("a/b", "nano", "bricks", 8, 16.0, ["conv1"])
    with pytest.raises(CardError, match="play must hold decode, stay_bias, frames, clips, rollout_psnr"):
        finetune_card("a/b", "nano", "bricks", 8, 16.0, ["conv1"], play={"stay_bias": 3})
    with pytest.raises(CardError, match="'play.frames' must be a finite number, got None"):
        finetune_card("a/b", "nano", "bricks", 8, 16.0, ["conv1"], play={**play, "frames": None})


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"psnr": (1.0, math.nan)}, "'psnr' must be a finite number"),
        ({"psnr": ("high", 2.0)}, "'psnr' must be a finite number"),
        ({"psnr": 3.0}, "must be a \\(base, fine-tuned\\) pair"),
    ],
)
def test_bad_metrics_are_refused(metrics, message):
    with pytest.raises(CardError, match=message):
        finetune_card("alice/x", "base", "g", 4, 8.0, ["to_q"], metrics=metrics)


def test_check_card_names_what_is_wrong():
    good = finetune_card("alice/x", "pocketworld/pocketworld-nano", "maze", 4, 8.0, ["to_q"])
    with pytest.raises(CardError, match="library_name is 'peft'"):
        check_card(good.replace("library_name: pocketworld", "library_name: peft"), finetune=True)
    with pytest.raises(CardError, match="needs base_model"):
        check_card(good.replace("base_model: pocketworld/pocketworld-nano\n", ""), finetune=True)
    with pytest.raises(CardError, match="not a valid model card"):
        check_card("---\ntags: [unclosed\n---\nbody", finetune=True)
    check_card(zoo_card("nano", "p/n", {"total": 1}), finetune=False)
