import pytest

from core import actions


def test_vocabulary_is_the_18_ale_actions_in_order():
    assert actions.NUM_ACTIONS == 18
    assert actions.ACTIONS[:6] == ("NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN")
    assert actions.ACTIONS[-1] == "DOWNLEFTFIRE"


@pytest.mark.parametrize("action", range(18))
def test_buttons_round_trip_for_every_action(action):
    assert actions.from_buttons(actions.to_buttons(action)) == action


@pytest.mark.parametrize(
    "text, expected",
    [
        ("LEFT+FIRE", "LEFTFIRE"),
        ("left+fire", "LEFTFIRE"),
        ("a+space", "LEFTFIRE"),
        ("ArrowUp+ArrowRight", "UPRIGHT"),
        ("w+d+j", "UPRIGHTFIRE"),
        ("z", "FIRE"),
        ("DOWNLEFT", "DOWNLEFT"),
        ("", "NOOP"),
        ("7", "UPLEFT"),
        ("left+right", "NOOP"),  # opposite directions cancel, as on a joystick
    ],
)
def test_parse_names_and_key_sets(text, expected):
    assert actions.ACTIONS[actions.parse(text)] == expected


def test_keyboard_and_gamepad_share_one_table():
    assert (
        actions.from_keys({"ArrowLeft", " "})
        == actions.from_keys({"dpad_left", "button_a"})
        == actions.ACTION_IDS["LEFTFIRE"]
    )


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid actions: NOOP, FIRE, UP"):
        actions.parse("JUMP")
    with pytest.raises(ValueError, match="unknown key 'q'"):
        actions.from_keys(["q"])


@pytest.mark.parametrize("bad", [-1, 18, 2.0, True, None])
def test_invalid_ids_are_rejected(bad):
    with pytest.raises(ValueError, match="invalid action"):
        actions.validate(bad)
