"""The one action vocabulary every PocketWorld game and model shares.

The 18 Atari-style actions (the ALE's full action set: NOOP, FIRE, the 8 directions and
each direction + FIRE), with keyboard and gamepad mappings kept in one table so that the
app, the recorders and user action logs all agree on what a key means.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

# Order follows the ALE's full action set, so Atari action ids need no remapping.
ACTIONS: tuple[str, ...] = (
    "NOOP",
    "FIRE",
    "UP",
    "RIGHT",
    "LEFT",
    "DOWN",
    "UPRIGHT",
    "UPLEFT",
    "DOWNRIGHT",
    "DOWNLEFT",
    "UPFIRE",
    "RIGHTFIRE",
    "LEFTFIRE",
    "DOWNFIRE",
    "UPRIGHTFIRE",
    "UPLEFTFIRE",
    "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)
NUM_ACTIONS = len(ACTIONS)
ACTION_IDS: dict[str, int] = {name: i for i, name in enumerate(ACTIONS)}
NOOP = ACTION_IDS["NOOP"]
BUTTONS: tuple[str, ...] = ("UP", "DOWN", "LEFT", "RIGHT", "FIRE")  # what the actions press, alone or together

# One table: each physical input -> the button it presses. Keyboard names are the
# browser's KeyboardEvent.key values (lower-cased); gamepad names follow the W3C
# "standard" gamepad layout.
INPUT_BUTTONS: dict[str, str] = {
    # keyboard
    "arrowup": "UP",
    "w": "UP",
    "arrowdown": "DOWN",
    "s": "DOWN",
    "arrowleft": "LEFT",
    "a": "LEFT",
    "arrowright": "RIGHT",
    "d": "RIGHT",
    " ": "FIRE",
    "space": "FIRE",
    "z": "FIRE",
    "j": "FIRE",
    # gamepad (standard mapping)
    "dpad_up": "UP",
    "dpad_down": "DOWN",
    "dpad_left": "LEFT",
    "dpad_right": "RIGHT",
    "button_a": "FIRE",
    "button_b": "FIRE",
    # button names themselves, so logs may say "left+fire"
    "up": "UP",
    "down": "DOWN",
    "left": "LEFT",
    "right": "RIGHT",
    "fire": "FIRE",
}


def from_buttons(buttons: Iterable[str]) -> int:
    """Action id for a set of pressed buttons (UP/DOWN/LEFT/RIGHT/FIRE).

    Opposite directions pressed together cancel, as on a real joystick.
    """
    pressed = set(buttons)
    vertical = ("UP" in pressed) - ("DOWN" in pressed)
    horizontal = ("RIGHT" in pressed) - ("LEFT" in pressed)
    name = {1: "UP", 0: "", -1: "DOWN"}[vertical] + {1: "RIGHT", 0: "", -1: "LEFT"}[horizontal]
    if "FIRE" in pressed:
        name += "FIRE"
    return ACTION_IDS[name or "NOOP"]


def to_buttons(action: int) -> frozenset[str]:
    """The buttons an action id presses (NOOP presses none)."""
    name = ACTIONS[validate(action)]
    return frozenset(b for b in BUTTONS if b in name)


def from_keys(keys: Iterable[str]) -> int:
    """Action id for a set of pressed keys or gamepad buttons (e.g. {"ArrowLeft", "z"})."""
    buttons = []
    for key in keys:
        name = key if key == " " else key.strip().lower()
        if name == "":
            continue
        if name not in INPUT_BUTTONS:
            raise ValueError(f"unknown key {key!r}; known keys: {', '.join(sorted(INPUT_BUTTONS))}")
        buttons.append(INPUT_BUTTONS[name])
    return from_buttons(buttons)


def parse(text: str | int) -> int:
    """Action id from an id, an action name ("UPLEFT"), or keys joined by '+' ("LEFT+FIRE", "a+space")."""
    if not isinstance(text, str):
        return validate(text)
    cleaned = text.strip()
    if cleaned.upper() in ACTION_IDS:
        return ACTION_IDS[cleaned.upper()]
    if cleaned.isdigit():
        return validate(int(cleaned))
    try:
        return from_keys(cleaned.split("+"))
    except ValueError:
        raise ValueError(
            f"unknown action {text!r}; valid actions: {', '.join(ACTIONS)} (or keys joined by '+', e.g. 'LEFT+FIRE')"
        ) from None


def validate(action: int) -> int:
    """Return the action id unchanged, or raise ValueError if it is not one of the 18."""
    if isinstance(action, Integral) and not isinstance(action, bool) and 0 <= action < NUM_ACTIONS:
        return int(action)
    raise ValueError(
        f"invalid action {action!r}: expected an id in 0..{NUM_ACTIONS - 1} "
        f"({', '.join(f'{i}={n}' for i, n in enumerate(ACTIONS))})"
    )
